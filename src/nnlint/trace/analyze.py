"""Analyze one constructed model on example inputs: trace it, then run the hazard checks.

Runs inside a worker process that has already imported torch. The result is plain data, so the
checker process never sees a tensor. Path 1 is torch.fx (fxpath), path 2 eager recording
(eagerpath); with `fake=True` either runs on fake tensors, and the checks that need values
(NNL704, NNL706-NNL709) are skipped.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Callable
from typing import Any

import torch
from torch.utils._pytree import tree_flatten, tree_map

from nnlint.trace import eagerpath, fxpath, implicit_dims, leakage
from nnlint.trace.checks import (
    Locator,
    OpRecord,
    TracedRun,
    TraceInfo,
    batch_merged_sizes,
    definition_loc,
    gradient_norm_findings,
    initial_loss,
    tensors_in,
)
from nnlint.trace.hazards import TraceRule, trace_rules
from nnlint.trace.usage import square_inputs

_LOGIT_PRODUCERS = frozenset({"module:Linear", "module:LazyLinear", "linear", "addmm", "matmul"})
BATCH_CODES = frozenset({"NNL701", "NNL704", "NNL705"})  # hazards that assume rows are independent samples
VALUE_CODES_NOTE = "value-based checks (NNL704, NNL706-NNL709, NNL712) skipped on fake tensors"
_TIME_MAJOR_OPS = frozenset({
    "module:RNN", "module:LSTM", "module:GRU", "module:MultiheadAttention", "module:Transformer",
    "module:TransformerEncoder", "module:TransformerDecoder", "module:TransformerEncoderLayer",
    "module:TransformerDecoderLayer", "lstm", "gru", "rnn_tanh", "rnn_relu", "multi_head_attention_forward",
})


def analyze_model(model, args: tuple, kwargs: dict, source_file: str, *, fake: bool = False,
                  int_inputs: bool = False, batch_axis: int | None = None) -> dict:
    """Trace `model(*args, **kwargs)` and report hazards at lines of `source_file`.

    Returns {"path": "fx" | "eager" | "fake-fx" | "fake-eager", "why": str, "findings": [{"code",
    "message", "line", "column", "end_line", "end_column"}], "notes": [str], "implicit_dims": [rows
    of `implicit_dims.as_rows`]}: plain data. Raises only when the forward pass itself fails (on the
    fake path: also when forward needs tensor values).

    `int_inputs` is a hint only: token inputs are recognized from their dtype, and the batch-mixing
    test then differentiates the first embedding output instead. `batch_axis` is where the checked
    code's own input (config, comment, example tensor) has its batch; inferred when None.
    """
    locate = Locator(source_file)
    notes: list[str] = []
    was_training = model.training
    set_training(model, False)  # BatchNorm/Dropout must not couple or randomize samples
    try:
        mode: Any = contextlib.nullcontext()
        if fake:
            from torch._subclasses.fake_tensor import FakeTensorMode

            mode = FakeTensorMode(allow_non_fake_inputs=True)
            args, kwargs = _fakeify(model, args, kwargs, mode)
        with mode, (contextlib.nullcontext() if fake else _batch_statistics(model)), \
                implicit_dims.module_ranks(model, locate) as built_ranks:
            trace, path, why = _trace(model, args, kwargs, locate, values=not fake)
        ranks = implicit_dims.as_rows(implicit_dims.call_ranks(trace.records) + built_ranks)
        batch, axis = _batch(model, trace.records, args, kwargs, batch_axis)
        info = TraceInfo(batch, definition_loc(source_file, model), batch_merged_sizes(trace.records, batch))
        op_rules = _rules(lambda r: r.scope == "op" and not (fake and r.needs_values))
        findings = _op_findings(trace.records, info, op_rules)
        if fake:  # every run check needs values
            notes.append(VALUE_CODES_NOTE)
        else:
            outputs = [t for t in tree_flatten(trace.output)[0] if isinstance(t, torch.Tensor)]
            run = TracedRun(model, trace.records, trace.output, trace.producer(outputs[0]) if outputs else None,
                            args, kwargs, info, axis, notes, locate)
            findings += _run_findings(run, _rules(lambda r: r.scope == "run"))
        shapes = [tuple(t.shape) for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor)]
        if square_inputs(shapes):  # graph nodes (an adjacency input) are meant to be mixed
            findings = [f for f in findings if f["code"] not in BATCH_CODES]
    except eagerpath.ForwardFailed as failed:
        # A loss given mismatched shapes often raises (cross_entropy with a (B, 1) target): that is
        # the NNL702 finding, not a model that cannot be traced.
        info = TraceInfo(None, definition_loc(source_file, model))
        findings = _op_findings(failed.records[-1:], info, _rules(lambda r: r.on_failed_forward))
        if not findings:
            if fake and "DataDependent" in type(failed.cause).__name__:
                raise RuntimeError("forward branches on tensor values, which fake tensors do not have "
                                   f"(model too big for the real path): {failed}") from None
            raise failed.cause from None
        path, why, ranks = "eager", f"forward raised {failed}", []
    finally:
        set_training(model, was_training)
    if fake:
        path = "fake-" + path
    return {"path": path, "why": why, "findings": _dedupe(findings), "notes": notes, "implicit_dims": ranks}


def set_training(model: torch.nn.Module, mode: bool) -> None:
    """`model.train(mode)` without calling overrides of `train()` (forward-forward layers train
    themselves in a `train(x_pos, x_neg)` method)."""
    for module in model.modules():
        module.training = mode


def _trace(model, args, kwargs, locate: Locator, *, values: bool):
    # Symbolic tracing runs forward on proxies: `self.freqs_cis = self.freqs_cis.to(h.device)`
    # stores a proxy on the module. Restored before the eager run when fx gives up.
    saved = [(m, dict(m.__dict__), dict(m._buffers), dict(m._parameters)) for m in model.modules()]
    try:
        trace = fxpath.trace(model, args, kwargs, locate, values=values)
        return trace, "fx", "torch.fx symbolic trace succeeded"
    except Exception as exc:  # noqa: BLE001 - data-dependent control flow, unsupported Python, ...
        for module, attributes, buffers, parameters in saved:
            module.__dict__.clear()
            module.__dict__.update(attributes)
            module._buffers.clear()
            module._buffers.update(buffers)
            module._parameters.clear()
            module._parameters.update(parameters)
        message = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        why = f"torch.fx failed ({type(exc).__name__}: {message}); traced eagerly"
    return eagerpath.trace(model, args, kwargs, locate, values=values), "eager", why


def _fakeify(model: torch.nn.Module, args: tuple, kwargs: dict, mode) -> tuple[tuple, dict]:
    """Swap the (meta) model's parameters and buffers, and the inputs, for fake CPU tensors in place.

    Fake tensors on "cpu" rather than "meta" keep device logic in forward (`torch.arange(T)` next to
    an activation) working as it would on a real CPU model, without allocating any data.
    """
    from torch._subclasses.fake_tensor import FakeTensor

    memo: dict[int, Any] = {}
    cpu = torch.device("cpu")

    def fake(t: torch.Tensor) -> torch.Tensor:
        # Wrapping the meta tensor directly costs microseconds; a factory under the mode, milliseconds.
        if id(t) not in memo:
            new: torch.Tensor = FakeTensor(mode, t.detach() if t.is_meta else t.detach().to("meta"), cpu)
            if isinstance(t, torch.nn.Parameter):
                new = torch.nn.Parameter(new, requires_grad=t.requires_grad)
            memo[id(t)] = new
        return memo[id(t)]

    for module in model.modules():
        for name, param in module._parameters.items():
            if param is not None:
                module._parameters[name] = fake(param)  # type: ignore[assignment]  # a Parameter in, one out
        for name, buffer in module._buffers.items():
            if buffer is not None:
                module._buffers[name] = fake(buffer)
    as_fake = lambda v: fake(v) if isinstance(v, torch.Tensor) else v  # noqa: E731
    return tree_map(as_fake, tuple(args)), tree_map(as_fake, dict(kwargs))


def _batch(model: torch.nn.Module, records: list[OpRecord], args, kwargs,
           declared: int | None = None) -> tuple[int | None, int]:
    """Batch size and axis of the first input tensor: `declared`, else axis 1 when it feeds a
    time-major RNN/attention."""
    leaves = [t for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor) and t.dim() > 0]
    if not leaves:
        return None, 0
    shape = tuple(leaves[0].shape)
    axis = 0
    if declared is not None and declared < len(shape):
        axis = declared
    elif len(shape) >= 2:
        # Time-major when a time-major RNN/attention consumes the input, or its embedding (the
        # leading two dimensions unchanged): `TransformerModel(src)` with src of shape (T, B).
        batch_first = next((m.batch_first for m in model.modules() if hasattr(m, "batch_first")), True)
        consumer = next((r for r in records if r.op in _TIME_MAJOR_OPS and any(
            tuple(t.shape[:2]) == shape[:2] for t in tensors_in(r.args)[:1])), None)
        if consumer is not None and batch_first is False:
            axis = 1
    return int(shape[axis]), axis


_CHECKS: dict[str, tuple[type[TraceRule], Callable]] = {}


def _rules(wanted: Callable[[type[TraceRule]], bool]) -> list[tuple[type[TraceRule], Callable]]:
    """The wanted traced rules with their check functions (resolved once per worker), in code order."""
    if not _CHECKS:
        for code, rule in trace_rules().items():
            _CHECKS[code] = (rule, resolve_check(rule))
    return [(rule, check) for rule, check in _CHECKS.values() if wanted(rule)]


def resolve_check(rule: type[TraceRule]) -> Callable:
    """The function a rule's `check` names; a name that does not resolve is an error, never skipped."""
    module, _, function = (rule.check or "").partition(":")
    try:
        return getattr(importlib.import_module(f"nnlint.trace.{module}"), function)
    except (ImportError, AttributeError, ValueError) as exc:
        name = getattr(rule, "code", rule.__name__)
        raise LookupError(f"{name}: check {rule.check!r} does not resolve: {exc}") from None


def _op_findings(records: list[OpRecord], info: TraceInfo, rules) -> list[dict]:
    found = []
    for rec in records:
        for _, check in rules:
            result = check(rec, info)
            if result:
                found.append(result)
    return found


def _run_findings(run: TracedRun, rules) -> list[dict]:
    found: list[dict] = []
    for rule, check in rules:
        try:
            found += check(run)
        except Exception as exc:  # noqa: BLE001 - one failed check must not lose the others
            run.notes.append(f"{rule.code} check failed: {type(exc).__name__}: {exc}"[:300])
        finally:
            run.model.zero_grad(set_to_none=True)
    return found


def initial_loss_of_head(run: TracedRun) -> list[dict]:
    """NNL707, judged only where the first output comes from a classifier head, not from features."""
    producer = run.producer
    if producer is None or producer.op not in _LOGIT_PRODUCERS:
        return []
    output = next(t for t in tree_flatten(run.output)[0] if isinstance(t, torch.Tensor))
    return initial_loss(output, producer.loc or run.info.fallback, run.info)


@contextlib.contextmanager
def _batch_statistics(model: torch.nn.Module):
    """BatchNorm as in the first training step (batch statistics), leaving its running stats untouched.

    In eval mode a fresh BatchNorm (running mean 0, variance 1) is the identity, so deep networks
    show activations and gradients that training never sees: the "at initialization" value checks
    (NNL706-NNL709) use batch statistics. Dropout stays off.
    """
    norms = [m for m in model.modules()
             if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    saved = [(m.training, m.momentum, _clone(m.num_batches_tracked)) for m in norms]
    for m in norms:
        m.training = True
        m.momentum = 0.0  # the running averages keep their values
    try:
        yield
    finally:
        for m, (training, momentum, tracked) in zip(norms, saved):
            m.training = training
            m.momentum = momentum
            if tracked is not None and m.num_batches_tracked is not None:
                m.num_batches_tracked.copy_(tracked)


def _clone(tensor: torch.Tensor | None) -> torch.Tensor | None:
    return None if tensor is None else tensor.clone()


def gradient_leak(run: TracedRun) -> list[dict]:
    """NNL704 (see leakage.py). Inputs with a (B, B) matrix (a graph's adjacency) make the rows
    nodes that forward is meant to mix: no batch to protect (BATCH_CODES are dropped)."""
    shapes = [tuple(t.shape) for t in tree_flatten((run.args, run.kwargs))[0] if isinstance(t, torch.Tensor)]
    if square_inputs(shapes):
        run.notes.append("batch checks skipped: a (B, B) input makes the rows nodes, not samples")
        return []
    return leakage.sample_findings(run.model, run.args, run.kwargs, run.axis, run.info.fallback, run.locate,
                                   run.notes)


def future_leak(run: TracedRun) -> list[dict]:
    """NNL712 (see leakage.py), for models meant to be causal only."""
    intent = leakage.causal_intent(run.model, run.records)
    if intent is None:
        return []
    return leakage.future_findings(run.model, run.args, run.kwargs, run.axis, run.info.fallback, run.locate,
                                   intent, run.notes)


def gradient_norms(run: TracedRun) -> list[dict]:
    """NNL709: first vs last layer weight gradients of the summed output, with batch statistics."""
    model, records, args, kwargs, info, notes = run.model, run.records, run.args, run.kwargs, run.info, run.notes
    if any(t.finite is False for r in records for t in tensors_in(r.out)):
        return []  # non-finite activations (NNL706) make every gradient non-finite: not a second finding
    with torch.enable_grad(), _batch_statistics(model):
        output = model(*args, **kwargs)
        tensors = [t for t in tree_flatten(output)[0]
                   if isinstance(t, torch.Tensor) and t.is_floating_point() and t.requires_grad]
        if not tensors:
            notes.append("NNL709 skipped: the output does not depend on trainable values")
            return []
        # A random projection, not a plain sum: the sum of a BatchNorm output has no gradient at all.
        generator = torch.Generator().manual_seed(0)
        projections = [(t.float() * torch.randn(t.shape, generator=generator)).sum() for t in tensors]
        torch.stack(projections).sum().backward(retain_graph=True)
    return gradient_norm_findings(model, info)


def _dedupe(findings: list[dict]) -> list[dict]:
    seen, unique = set(), []
    for item in sorted(findings, key=lambda f: (f["line"], f["column"], f["code"])):
        key = (item["code"], item["line"])  # one report per hazard and line: `a.mean(0) / a.std(0)`
        if key not in seen:
            seen.add(key)
            unique.append(item)
    return unique
