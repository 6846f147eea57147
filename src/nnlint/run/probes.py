"""The probes the child installs before running the user's script, and what they record.

torch's own global hooks where they exist (module forward pre/post hooks, optimizer step pre/post hooks)
and thin wrappers elsewhere (the functional losses, which loss modules call too; `torch.autograd.backward`,
which `Tensor.backward` calls; `DataLoader` construction and its iterator's `__next__`; the constructors
of modules and optimizers, only to remember where the user built them). Findings that are certain the
moment they happen (a loss broadcast, labels out of range, the first NaN) are made here; the rest is
recorded for verdicts.py. Probes never raise into the user's code except `StopRun`.
"""

from __future__ import annotations

import functools
import inspect
import math
import time
import warnings
import weakref
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.loss import _Loss
from torch.optim.optimizer import register_optimizer_step_post_hook, register_optimizer_step_pre_hook
from torch.overrides import TorchFunctionMode
from torch.utils.data import DataLoader
from torch.utils.data.dataloader import _BaseDataLoaderIter

from nnlint.run.locate import Site, site

CLASS_LOSSES = ("cross_entropy", "nll_loss")
BINARY_LOSSES = ("binary_cross_entropy", "binary_cross_entropy_with_logits")
REGRESSION_LOSSES = ("mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss")
SAME_SHAPE_LOSSES = REGRESSION_LOSSES + BINARY_LOSSES + ("kl_div", "soft_margin_loss", "poisson_nll_loss")
WATCHED_LOSSES = CLASS_LOSSES + SAME_SHAPE_LOSSES
_ELEMENTWISE = frozenset({"sub", "add", "mul", "div", "pow", "true_divide", "subtract", "multiply", "divide"})
LABEL_BATCHES = 40  # label tensors kept for the distribution checks
INPUT_BATCHES = 3  # model inputs whose statistics are kept
ACTIVATION_LAYERS = 24


class StopRun(BaseException):
    """Raised into the user's code to end the run; BaseException so `except Exception` does not catch it."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass
class Finding:
    code: str
    message: str
    site: Site | None
    severity: str | None = None  # overrides the rule's severity (NNL804's info for imbalance)


@dataclass
class Root:
    """A module with parameters called by user code, not from another module: a model being trained."""

    module: nn.Module  # held: the verdicts run after the script's frames are gone
    built: Site | None
    called: Site | None
    names: dict[int, str]  # id(parameter) -> qualified name
    inputs: list[torch.Tensor] = field(default_factory=list)  # first INPUT_BATCHES training inputs (detached)


@dataclass
class LossCall:
    kind: str
    site: Site | None
    step: int
    classes: int | None = None
    value: float | None = None
    target_var: float | None = None
    target_mad: float | None = None


def _guard(method):
    """A probe that fails disables nothing of the user's run: it notes the failure and returns."""
    @functools.wraps(method)
    def guarded(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except StopRun:
            raise
        except Exception as exc:  # noqa: BLE001 - a probe bug must not break the user's training
            note = f"probe {method.__name__} failed: {type(exc).__name__}: {exc}"
            if note not in self.notes:
                self.notes.append(note)
            return None
    return guarded


def _first_tensor(args) -> torch.Tensor | None:
    for value in args:
        if isinstance(value, torch.Tensor):
            return value
    return None


class Probes:
    def __init__(self, steps: int, mode: str = "run"):
        self.steps_wanted = steps
        self.mode = mode  # "run", "overfit" (repeat the first batch) or "baseline" (zeroed inputs)
        self.step = 0  # completed steps of the primary optimizer
        self.stop_reason: str | None = None
        self.notes: list[str] = []
        self.findings: list[Finding] = []
        self._found_keys: set = set()
        # construction sites
        self.module_sites: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self.optimizer_sites: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self.loader_sites: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self.weights_loaded = False
        # forward
        self.depth = 0
        self.roots: dict[int, Root] = {}
        self.calls_in_step = 0
        self.replay_inputs: dict[int, tuple] = {}  # overfit: call index in step -> first step's args
        self.last_root_call: tuple | None = None  # (root, args) of the latest training call
        # losses
        self.in_loss = False
        self._warned: set = set()  # (message, category, file, line) of the loss warnings already shown
        self.loss_calls: list[LossCall] = []
        self.losses_in_step = 0
        self.replay_targets: dict[int, torch.Tensor] = {}
        self.labels: list[tuple[Site | None, int, torch.Tensor]] = []
        self.last_loss_site: Site | None = None
        # backward and steps
        self.primary: torch.optim.Optimizer | None = None
        self.optimizers: list[torch.optim.Optimizer] = []  # held, like the roots
        self.loss_series: list[float] = []
        self._step_losses: list[float] = []
        self.backward_site: Site | None = None
        self.step_site: Site | None = None
        self.grad_norms: list[dict[str, float]] = []  # per step: parameter name -> gradient norm
        self.param_dims: dict[str, int] = {}
        self.never_in_optimizer_checked = False
        self.manual: bool | None = None  # weights updated by hand, without an optimizer (None: not known yet)
        self._weight_snapshot: torch.Tensor | None = None
        self.step_times: list[float] = []
        self.data_waits: list[float] = []
        self._wait = 0.0
        # Main-thread CPU seconds, which CPU contention from other processes does not inflate.
        self.step_cpu: list[float] = []
        self.data_wait_cpu: list[float] = []
        self._wait_cpu = 0.0
        self._step_cpu_start = 0.0
        self.on_accelerator = False
        self._step_start: float | None = None
        self.waiting_loader: Site | None = None
        self.loader_workers: dict[Site, int] = {}
        # activations, sampled on a few steps
        self.sample_every = max(1, steps // 5)
        self.activations: dict[str, list[tuple[int, float, float]]] = {}
        self._pending_acts: list[tuple[str, torch.Tensor]] = []
        self.module_names: dict[int, str] = {}
        # first-step broadcast candidates from hand-written losses
        self._mode: _BroadcastWatch | None = None
        self._candidates: dict[Any, Site | None] = {}
        self.started = time.perf_counter()

    # -- findings --------------------------------------------------------------------------------

    def find(self, code: str, message: str, where: Site | None, severity: str | None = None) -> None:
        key = (code, where[:2] if where else None)
        if key not in self._found_keys:
            self._found_keys.add(key)
            self.findings.append(Finding(code, message, where, severity))

    def stop(self, reason: str) -> None:
        self.stop_reason = self.stop_reason or reason
        raise StopRun(reason)

    # -- installing ------------------------------------------------------------------------------

    def install(self) -> None:
        probes = self
        nn.modules.module.register_module_forward_pre_hook(self._pre_forward)
        nn.modules.module.register_module_forward_hook(self._post_forward)
        register_optimizer_step_pre_hook(self._pre_step)
        register_optimizer_step_post_hook(self._post_step)

        module_init = nn.Module.__init__

        def init_module(module, *args, **kwargs):
            module_init(module, *args, **kwargs)
            probes._built(module, nn.Module)

        nn.Module.__init__ = init_module

        optimizer_init = torch.optim.Optimizer.__init__

        def init_optimizer(optimizer, *args, **kwargs):
            optimizer_init(optimizer, *args, **kwargs)
            probes._built(optimizer, torch.optim.Optimizer)

        torch.optim.Optimizer.__init__ = init_optimizer

        loader_init = DataLoader.__init__

        def init_loader(loader, *args, **kwargs):
            loader_init(loader, *args, **kwargs)
            probes._built(loader, DataLoader)

        DataLoader.__init__ = init_loader

        get_iterator = DataLoader._get_iterator

        def iterator_of(loader):
            iterator = get_iterator(loader)
            iterator._nnlint_loader = loader
            return iterator

        DataLoader._get_iterator = iterator_of

        next_batch = _BaseDataLoaderIter.__next__

        def timed_next(iterator):
            started, cpu = time.perf_counter(), time.thread_time()
            try:
                return next_batch(iterator)
            finally:
                probes._waited(iterator, time.perf_counter() - started, time.thread_time() - cpu)

        _BaseDataLoaderIter.__next__ = timed_next

        load_state_dict = nn.Module.load_state_dict

        def loading(module, *args, **kwargs):
            probes.weights_loaded = True
            return load_state_dict(module, *args, **kwargs)

        nn.Module.load_state_dict = loading

        backward = torch.autograd.backward

        @functools.wraps(backward)
        def watched_backward(tensors, *args, **kwargs):
            probes._backward(tensors)
            result = backward(tensors, *args, **kwargs)
            probes._after_backward()
            return result

        torch.autograd.backward = watched_backward

        for name in WATCHED_LOSSES:
            real = getattr(F, name)
            setattr(F, name, self._loss_wrapper(name, real))

    def _loss_wrapper(self, name: str, real):
        probes = self
        signature = inspect.signature(real)

        @functools.wraps(real)
        def loss(*args, **kwargs):
            if probes.in_loss:
                return real(*args, **kwargs)
            try:
                bound = signature.bind(*args, **kwargs)
            except TypeError:
                return real(*args, **kwargs)
            probes.in_loss = True
            try:
                call = probes._before_loss(name, bound)
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    out = real(*bound.args, **bound.kwargs)
                probes._rewarn(caught)
                if call is not None:
                    probes._after_loss(call, out)
            finally:
                probes.in_loss = False
            return out

        return loss

    def _rewarn(self, caught: list) -> None:
        """torch's loss warnings name their caller, which is now this wrapper: name the user's line instead."""
        if not caught:
            return
        where = site()
        for warning in caught:
            filename, line = (where[0], where[1]) if where else (warning.filename, warning.lineno)
            key = (str(warning.message), warning.category, filename, line)
            if key not in self._warned:  # once per place, as Python's default filter would
                self._warned.add(key)
                warnings.warn_explicit(warning.message, warning.category, filename, line)

    # -- construction sites ----------------------------------------------------------------------

    @_guard
    def _built(self, obj, base: type) -> None:
        table = {nn.Module: self.module_sites, torch.optim.Optimizer: self.optimizer_sites,
                 DataLoader: self.loader_sites}[base]
        if obj not in table:
            table[obj] = site(skip_init_of=base)
        if base is torch.optim.Optimizer and obj not in self.optimizers:
            self.optimizers.append(obj)

    # -- forward ---------------------------------------------------------------------------------

    def _pre_forward(self, module: nn.Module, args: tuple):
        self.depth += 1
        return self._root_call(module, args) if self.depth == 1 else None

    @_guard
    def _root_call(self, module: nn.Module, args: tuple):
        if isinstance(module, _Loss) or not torch.is_grad_enabled() or not module.training:
            return None
        if next(module.parameters(), None) is None:
            return None
        root = self.roots.get(id(module))
        if root is None:
            root = self.roots[id(module)] = Root(
                module, self.module_sites.get(module), site(),
                {id(p): n for n, p in module.named_parameters()})
            for name, sub in module.named_modules():
                self.module_names.setdefault(id(sub), name or type(module).__name__)
            if self._mode is None and self.step == 0:
                self._mode = _BroadcastWatch(self)
                self._mode.__enter__()
        index = self.calls_in_step
        self.calls_in_step += 1
        replaced = None
        if self.mode == "overfit":
            if self.step == 0:
                self.replay_inputs.setdefault(index, _detached(args))
            elif index in self.replay_inputs:
                replaced = self.replay_inputs[index]
        elif self.mode == "baseline" and args and isinstance(args[0], torch.Tensor):
            replaced = (torch.zeros_like(args[0]), *args[1:])
        self.last_root_call = (module, replaced or args)
        x = _first_tensor(args)
        if x is not None and x.device.type != "cpu":
            self.on_accelerator = True
        if x is not None and len(root.inputs) < INPUT_BATCHES and x.is_floating_point() and x.numel() > 0:
            root.inputs.append(x.detach()[:512].to("cpu", torch.float64))
        return replaced

    def _post_forward(self, module: nn.Module, args: tuple, output):
        self.depth = max(0, self.depth - 1)
        if self._sampling() and not any(True for _ in module.children()):
            self._record_activation(module, output)
        return None

    def _sampling(self) -> bool:
        return self.step % self.sample_every == 0 and self.step < self.steps_wanted

    @_guard
    def _record_activation(self, module: nn.Module, output) -> None:
        if not isinstance(output, torch.Tensor) or not output.is_floating_point() or output.numel() < 2:
            return
        name = self.module_names.get(id(module))
        if name is None or (name not in self.activations and len(self.activations) >= ACTIVATION_LAYERS):
            return
        self.activations.setdefault(name, [])
        with torch.no_grad():
            flat = output.detach().float()
            self._pending_acts.append((name, torch.stack([flat.mean(), flat.std()])))

    # -- losses ----------------------------------------------------------------------------------

    @_guard
    def _before_loss(self, name: str, bound: inspect.BoundArguments):
        arguments = bound.arguments
        pred, target = arguments.get("input"), arguments.get("target")
        if not isinstance(pred, torch.Tensor) or not isinstance(target, torch.Tensor):
            return None
        if not torch.is_grad_enabled() or not pred.requires_grad:
            return None  # evaluation
        where = site()
        self.last_loss_site = where
        index = self.losses_in_step
        self.losses_in_step += 1
        if self.mode == "overfit":
            if self.step == 0:
                self.replay_targets.setdefault(index, target.detach().clone())
            elif index in self.replay_targets and self.replay_targets[index].shape == target.shape:
                target = arguments["target"] = self.replay_targets[index]
        if name in SAME_SHAPE_LOSSES and pred.shape != target.shape:
            self._check_loss_broadcast(name, pred, target, where)
        classes = None
        if name in CLASS_LOSSES and not target.is_floating_point():
            classes = int(pred.shape[1] if pred.dim() >= 2 else pred.shape[0])
            ignore = arguments.get("ignore_index", -100)
            self._check_labels(name, target, classes, ignore, where)
        elif name in BINARY_LOSSES and target.numel():
            low, high = float(target.min()), float(target.max())
            if low < 0 or high > 1:
                self.find("NNL804", f"{name} targets range over [{low:g}, {high:g}], outside [0, 1]: binary "
                          "targets must be 0/1 probabilities; map the labels to 0 and 1", where)
        if self.step != 0 or any(c.site == where for c in self.loss_calls):
            return None
        call = LossCall(name, where, self.step, 2 if name in BINARY_LOSSES else classes)
        if name in ("mse_loss", "l1_loss") and target.is_floating_point() and target.numel() > 1:
            t = target.detach().double()
            call.target_var = float(t.var(unbiased=False))
            call.target_mad = float((t - t.median()).abs().mean())
        self.loss_calls.append(call)
        return call

    @_guard
    def _after_loss(self, call: LossCall, out) -> None:
        if isinstance(out, torch.Tensor) and out.numel():
            call.value = float(out.detach().float().mean())

    def _check_loss_broadcast(self, name: str, pred: torch.Tensor, target: torch.Tensor, where) -> None:
        try:
            shape = torch.broadcast_shapes(pred.shape, target.shape)
        except RuntimeError:
            return  # torch raises on its own
        if math.prod(shape) > max(pred.numel(), target.numel()):
            self.find("NNL801", f"{name} input {tuple(pred.shape)} and target {tuple(target.shape)} broadcast to "
                      f"{tuple(shape)}: every prediction is compared with every target; make the shapes agree "
                      "(e.g. `.squeeze(-1)` the prediction)", where)

    def _check_labels(self, name: str, target: torch.Tensor, classes: int, ignore: int, where) -> None:
        labels = target.detach().reshape(-1)
        labels = labels[labels != ignore] if ignore is not None else labels
        if not labels.numel():
            return
        low, high = int(labels.min()), int(labels.max())
        if low < 0 or high >= classes:
            self.find("NNL804", f"{name} got class labels in [{low}, {high}] but the model has {classes} outputs "
                      f"(valid labels 0..{classes - 1}); {'shift the labels to start at 0' if low >= 1 else 'fix the label mapping or the number of outputs'}",
                      where)
            self.stop("labels")  # the loss would crash (or read out of bounds) right here
        if len(self.labels) < LABEL_BATCHES:
            self.labels.append((where, classes, labels[:4096].to("cpu").clone()))

    # -- backward and optimizer steps ------------------------------------------------------------

    @_guard
    def _backward(self, tensors) -> None:
        loss = tensors if isinstance(tensors, torch.Tensor) else (tensors[0] if tensors else None)
        if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
            return
        where = site()
        self.backward_site = self.backward_site or where
        if self._mode is not None and self.step == 0 and self._candidates:
            self._confirm_broadcasts(loss)
        value = float(loss.detach())
        if not math.isfinite(value):
            layer = self._nonfinite_layer()
            detail = f"; first non-finite output in layer `{layer}`" if layer else ""
            self.find("NNL809", f"the loss is {value} at step {self.step}{detail}: lower the learning rate, clip "
                      "gradients or guard log/division; every later step is wasted", self.last_loss_site or where)
            self.stop("nonfinite")
        self._step_losses.append(value)

    def _confirm_broadcasts(self, loss: torch.Tensor) -> None:
        """A first-step broadcast counts only if the loss that is backpropagated depends on it."""
        seen, frontier = set(), [loss.grad_fn]
        pending = dict(self._candidates)
        while frontier and pending and len(seen) < 20000:
            node = frontier.pop()
            if node is None or node in seen:
                continue
            seen.add(node)
            if node in pending:
                message, where = pending.pop(node)
                self.find("NNL801", message, where)
            frontier.extend(next_node for next_node, _ in node.next_functions)

    def _nonfinite_layer(self) -> str | None:
        """Replay the latest model call with per-layer checks: the first layer whose output turns non-finite."""
        if self.last_root_call is None:
            return None
        module, args = self.last_root_call
        found: list[str] = []

        def check(layer, _inputs, output):
            if not found and isinstance(output, torch.Tensor) and output.is_floating_point() \
                    and not bool(torch.isfinite(output).all()):
                found.append(self.module_names.get(id(layer), type(layer).__name__))

        handles = [m.register_forward_hook(check) for m in module.modules()]
        try:
            with torch.no_grad():
                module(*args)
        except Exception:  # noqa: BLE001 - best effort
            pass
        finally:
            for handle in handles:
                handle.remove()
        return found[0] if found else None

    def _pre_step(self, optimizer, args, kwargs) -> None:
        if self.primary is None:
            self.primary = optimizer
            if optimizer not in self.optimizers:
                self.optimizers.append(optimizer)
            self.manual = False
        self.depth = 0
        if self._mode is not None:
            self._mode.close()
        if self.primary is optimizer:
            self._primary_pre_step(optimizer)

    @_guard
    def _primary_pre_step(self, optimizer) -> None:
        self.step_site = self.step_site or site()
        self._record_grads([p for g in optimizer.param_groups for p in g["params"]])
        if not self.never_in_optimizer_checked:
            self.never_in_optimizer_checked = True
            self._check_outside_optimizers()

    def _record_grads(self, params: list[torch.Tensor]) -> None:
        """Per-parameter gradient norms of this step (0 for none), one sync; the first non-finite one stops."""
        names = self._param_names()
        with_grad = [p for p in params if p.grad is not None]
        norms = {}
        if with_grad:
            values = torch.stack(torch._foreach_norm([p.grad.detach() for p in with_grad])).double().tolist()
            for p, value in zip(with_grad, values):
                name = names.get(id(p), f"param{id(p) % 10000}")
                norms[name] = value
                self.param_dims.setdefault(name, p.dim())
                if not math.isfinite(value):
                    self.find("NNL809", f"the gradient of `{name}` is {value} at step {self.step} while the loss is "
                              "finite: clip gradients or lower the learning rate", self.step_site)
                    self.stop("nonfinite")
        for p in params:
            if p.requires_grad and p.grad is None:
                norms.setdefault(names.get(id(p), f"param{id(p) % 10000}"), 0.0)
        self.grad_norms.append(norms)

    def _param_names(self) -> dict[int, str]:
        names: dict[int, str] = {}
        several = len(self.roots) > 1
        for root in self.roots.values():
            module = root.module
            prefix = f"{type(module).__name__}." if several and module is not None else ""
            for pid, name in root.names.items():
                names.setdefault(pid, prefix + name)
        return names

    def _root_params(self) -> list[torch.Tensor]:
        params, seen = [], set()
        for root in self.roots.values():
            module = root.module
            for p in module.parameters() if module is not None else ():
                if p.requires_grad and id(p) not in seen:
                    seen.add(id(p))
                    params.append(p)
        return params

    def _check_outside_optimizers(self) -> None:
        optimized = {id(p) for opt in list(self.optimizers) for g in opt.param_groups for p in g["params"]}
        for root in self.roots.values():
            module = root.module
            if module is None:
                continue
            left_out = [n for n, p in module.named_parameters() if p.grad is not None and id(p) not in optimized]
            if left_out:
                where = self.optimizer_sites.get(self.primary) if self.primary is not None else None
                shown = ", ".join(left_out[:4]) + (f" and {len(left_out) - 4} more" if len(left_out) > 4 else "")
                self.find("NNL808", f"{shown} receive gradients but are in no optimizer, so they never train: "
                          "pass them to the optimizer (or set requires_grad=False to freeze them)",
                          where or root.built or self.step_site)

    @_guard
    def _post_step(self, optimizer, args, kwargs) -> None:
        if self.primary is None or self.primary is not optimizer:
            return
        self._check_weights([p for g in optimizer.param_groups for p in g["params"]])
        self._close_step()

    @_guard
    def _after_backward(self) -> None:
        """Scripts that update weights by hand (`p.data.add_(...)`, no optimizer): each backward is a step.

        Told apart from gradient accumulation by the weights changing between two backward calls."""
        if self.manual is False:
            return
        params = self._root_params()
        if not params:
            return
        if self.manual is None:
            norms = torch.stack(torch._foreach_norm([p.detach() for p in params]))
            previous, self._weight_snapshot = self._weight_snapshot, norms
            if previous is None or previous.shape != norms.shape or torch.equal(previous, norms):
                return
            self.manual = True
            self.step_site = self.backward_site
            earlier = self._step_losses[:-1]
            self._step_losses = self._step_losses[-1:]
            self.loss_series.append(sum(earlier) / len(earlier) if earlier else math.nan)
            self.step += 1  # the update before this backward
            self.calls_in_step = self.losses_in_step = 0
        self._record_grads(params)
        self._check_weights(params)
        self._close_step()

    def _check_weights(self, params: list[torch.Tensor]) -> None:
        if not params:
            return
        norms = torch.stack(torch._foreach_norm([p.detach() for p in params])).double()
        if not bool(torch.isfinite(norms).all()):
            names = self._param_names()
            bad = next(p for p, v in zip(params, norms.tolist()) if not math.isfinite(v))
            self.find("NNL809", f"the weights of `{names.get(id(bad), '?')}` became non-finite in the update "
                      f"of step {self.step}: lower the learning rate or clip gradients", self.step_site)
            self.stop("nonfinite")

    def _close_step(self) -> None:
        now, cpu = time.perf_counter(), time.thread_time()
        if self._step_start is not None:
            self.step_times.append(now - self._step_start)
            self.data_waits.append(self._wait)
            self.step_cpu.append(cpu - self._step_cpu_start)
            self.data_wait_cpu.append(self._wait_cpu)
        self._step_start, self._step_cpu_start = now, cpu
        self._wait = self._wait_cpu = 0.0
        self.loss_series.append(sum(self._step_losses) / len(self._step_losses) if self._step_losses else math.nan)
        self._step_losses = []
        self.calls_in_step = self.losses_in_step = 0
        if self._pending_acts:
            values = torch.stack([t for _, t in self._pending_acts]).double().tolist()
            for (name, _), (mean, std) in zip(self._pending_acts, values):
                self.activations[name].append((self.step, mean, std))
            self._pending_acts = []
        self.step += 1
        if self.step >= self.steps_wanted:
            self.stop("steps")

    @_guard
    def _waited(self, iterator, seconds: float, cpu: float) -> None:
        self._wait += seconds
        self._wait_cpu += cpu
        loader = getattr(iterator, "_nnlint_loader", None)
        if loader is None:
            return
        where = self.loader_sites.get(loader)
        if where is not None:
            self.waiting_loader = where
            self.loader_workers[where] = loader.num_workers


def _detached(args: tuple) -> tuple:
    return tuple(a.detach().clone() if isinstance(a, torch.Tensor) else a for a in args)


class _BroadcastWatch(TorchFunctionMode):
    """During the first step only: elementwise ops in the training loop (outside any module) whose result
    is larger than every operand because a lower-rank operand was expanded, i.e. `(B, 1) - (B,)`."""

    def __init__(self, probes: Probes):
        super().__init__()
        self.probes = probes
        self.open = True

    def close(self) -> None:
        if self.open:
            self.open = False
            try:
                self.__exit__(None, None, None)
            except Exception:  # noqa: BLE001 - another mode was entered on top; it unwinds itself
                pass

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if self.probes.depth == 0 and self.probes.step == 0:
            name = getattr(func, "__name__", "").strip("_").removeprefix("r")
            if name in _ELEMENTWISE or name.removeprefix("i") in _ELEMENTWISE:
                self._check(name, args, out)
        return out

    def _check(self, name: str, args, out) -> None:
        operands = [a for a in args[:2] if isinstance(a, torch.Tensor) and a.numel() > 1]
        if len(operands) != 2 or not isinstance(out, torch.Tensor) or out.grad_fn is None:
            return
        a, b = operands
        if a.dim() == b.dim() or out.numel() <= max(a.numel(), b.numel()):
            return
        message = (f"`{tuple(a.shape)} {name} {tuple(b.shape)}` broadcasts to {tuple(out.shape)} in the loss: every "
                   "prediction is combined with every target; make the shapes agree (e.g. `.squeeze(-1)`)")
        self.probes._candidates[out.grad_fn] = (message, site())
