"""Facts about training and evaluation loops, gathered once per file and read by the NNL5 rules.

One extra walk of the module at `leave_Module` records the calls that matter to training loops
(backward, optimizer and scheduler steps, zero_grad, eval/train mode switches, model calls, calls to
functions of the same file) with where they happen: enclosing function, loops, control block and
whether gradients are disabled. The rules then query these facts; nothing here imports torch.
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any

import libcst as cst

from nnlint.imports import dotted_name
from nnlint.static.calls import get_arg, positional_args
from nnlint.static.facts import Facts
from nnlint.static.facts.names import (
    SCHEDULER_WORDS,
    is_optimizer_class,
    is_optimizer_name,
    last_part,
    name_tokens,
)
from nnlint.tree import children

# Receivers whose `.backward(loss)` is a framework's, which manages gradients itself.
_FRAMEWORK_WORDS = frozenset({"accelerator", "fabric", "engine", "trainer", "strategy", "self", "deepspeed",
                              "precision", "amp"})
_MODEL_WORDS = frozenset({"model", "net", "network", "classifier", "encoder", "backbone", "generator",
                          "discriminator", "cnn", "mlp", "resnet", "unet", "vit"})
_FACTORY_WORDS = frozenset({"get", "build", "create", "make", "load", "init", "setup", "prepare", "wrap"})
_NO_GRAD = frozenset({"torch.no_grad", "torch.inference_mode", "torch.autograd.no_grad",
                      "torch.autograd.grad_mode.no_grad", "torch.autograd.grad_mode.inference_mode"})
_GRAD_ON = frozenset({"torch.enable_grad", "torch.autograd.enable_grad"})
_LR_SCHEDULE_FACTORIES = re.compile(r"^transformers\..*schedule|^torch\.optim\.lr_scheduler\.")
_BLOCK_TYPES = frozenset({cst.If, cst.Else, cst.ExceptHandler, cst.Lambda, cst.For, cst.While, cst.ListComp,
                          cst.SetComp, cst.DictComp, cst.GeneratorExp})
# Subtrees that never hold anything the loop rules look at.
_SKIPPED = frozenset({cst.Name, cst.SimpleString, cst.Integer, cst.Float, cst.Imaginary, cst.Ellipsis, cst.Pass,
                      cst.Break, cst.Continue, cst.Import, cst.ImportFrom, cst.Annotation, cst.FormattedString,
                      cst.ConcatenatedString, cst.EmptyLine, cst.Comment, cst.Newline})


def is_model_name(dotted: str | None) -> bool:
    part = last_part(dotted)
    words = name_tokens(part)
    if not words or words & _FACTORY_WORDS:
        return False
    lower = part.lower()
    return bool(words & _MODEL_WORDS) or lower.endswith(("net", "model"))


class Event:
    """One call (or assignment) that matters, in source order within its scope."""

    __slots__ = ("kind", "node", "name", "scope", "blocks", "loops", "no_grad", "index", "extra")

    def __init__(self, kind, node, name, scope, blocks, loops, no_grad, index, extra=None):
        self.kind = kind  # backward, fw_backward, step, zero, eval, train, call, accum, append, assign, grad
        self.node = node
        self.name = name  # receiver's (or callee's) dotted name, when it has one
        self.scope = scope
        self.blocks = blocks  # enclosing control nodes, outermost first
        self.loops = loops  # enclosing loops of this scope, outermost first
        self.no_grad = no_grad  # inside `with torch.no_grad()` (or inference_mode) in this scope
        self.index = index
        # backward: the receiver expression; step: whether the call is a whole statement;
        # accum: the added value; assign: the assigned value; call: its resolved qualified name.
        self.extra = extra

    @property
    def block(self):
        return self.blocks[-1] if self.blocks else self.scope.node


class Scope:
    """A function body (or the module's top level)."""

    def __init__(self, node, name: str, class_name: str | None, no_grad_decorated: bool):
        self.node = node
        self.name = name
        self.class_name = class_name
        self.no_grad_decorated = no_grad_decorated
        self.events: list[Event] = []


class LoopFacts(Facts):
    """The file's loop events, collected by one extra walk the first time a rule asks."""

    def __init__(self, ctx):
        super().__init__(ctx)
        self.module_scope = Scope(ctx.module, "<module>", None, False)
        self.scopes: list[Scope] = [self.module_scope]
        self.loop_iters: dict[cst.CSTNode, cst.CSTNode] = {}
        self.loop_no_grad: dict[cst.CSTNode, bool] = {}
        self.assigned_calls: dict[str, str] = {}  # dotted target -> qualified name of the call assigned to it
        self._collect(ctx)
        self._index()

    # ---- collection -------------------------------------------------------------------------
    def _collect(self, ctx) -> None:
        qualname = ctx.qualname
        # Each stack item is (node, state); state = (scope, blocks, loops, no_grad, class_name) and is
        # shared by siblings, rebuilt only where a node changes it.
        stack: list[tuple[Any, Any]] = [  # dispatched on type(node), which mypy cannot narrow
            (ctx.module, (self.module_scope, (), (), False, None))]
        expr_values: set[int] = set()
        pop, push = stack.pop, stack.append
        state: Any
        while stack:
            node, state = pop()
            kind = type(node)
            if kind in _SKIPPED:
                continue
            if kind is cst.Call:
                scope, blocks, loops, no_grad = state[:4]
                self._call(node, scope, blocks, loops, no_grad, id(node) in expr_values, qualname)
            elif kind is cst.Expr:
                expr_values.add(id(node.value))
            elif kind is cst.FunctionDef:
                decorated = any(self._is_no_grad(d.decorator, qualname) for d in node.decorators)
                scope = Scope(node, node.name.value, state[4], decorated)
                self.scopes.append(scope)
                inner = (scope, (), (), False, None)
                push((node.body, inner))
                push((node.params, inner))
                continue
            elif kind is cst.ClassDef:
                state = state[:4] + (node.name.value,)
            elif kind is cst.With:
                for item in node.items:
                    grad = self._grad_state(item.item, qualname)
                    if grad is not None:
                        state = state[:3] + (grad, state[4])
            elif kind is cst.AugAssign:
                if state[2] and isinstance(node.operator, cst.AddAssign):
                    scope, blocks, loops, no_grad = state[:4]
                    self._add(scope, "accum", node, dotted_name(node.target), blocks, loops, no_grad, node.value)
            elif kind is cst.Assign:
                scope, blocks, loops, no_grad = state[:4]
                self._assign(node, scope, blocks, loops, no_grad, qualname)
            elif kind in _BLOCK_TYPES:
                scope, blocks, loops, no_grad, class_name = state
                blocks = blocks + (node,)
                if kind is cst.For or kind is cst.While:
                    loops = loops + (node,)
                    self.loop_no_grad[node] = no_grad or scope.no_grad_decorated
                    if kind is cst.For:
                        self.loop_iters[node] = node.iter
                state = (scope, blocks, loops, no_grad, class_name)
            kids = list(children(node))
            kids.reverse()
            for child in kids:
                push((child, state))

    def _add(self, scope, kind, node, name, blocks, loops, no_grad, extra=None):
        scope.events.append(Event(kind, node, name, scope, blocks, loops, no_grad, len(scope.events), extra))

    @staticmethod
    def _is_no_grad(expr, qualname) -> bool:
        target = expr.func if isinstance(expr, cst.Call) else expr
        return qualname(target) in _NO_GRAD

    @staticmethod
    def _grad_state(expr, qualname) -> bool | None:
        """True for a context that disables gradients, False for one that enables them, else None."""
        if not isinstance(expr, cst.Call):
            return None
        name = qualname(expr.func)
        if name in _NO_GRAD:
            return True
        if name in _GRAD_ON:
            return False
        if name in ("torch.set_grad_enabled", "torch.autograd.set_grad_enabled"):
            mode = get_arg(expr, 0, "mode")
            if isinstance(mode, cst.Name) and mode.value in ("True", "False"):
                return mode.value == "False"
        return None

    def _assign(self, node: cst.Assign, scope, blocks, loops, no_grad, qualname) -> None:
        value = node.value
        call_name = qualname(value.func) if isinstance(value, cst.Call) else None
        for assign_target in node.targets:
            target = assign_target.target
            if isinstance(target, cst.Attribute) and target.attr.value == "grad":
                if isinstance(value, cst.Name) and value.value == "None":
                    self._add(scope, "zero", node, dotted_name(target.value), blocks, loops, no_grad)
                continue
            dotted = dotted_name(target)
            if dotted is None:
                continue
            if call_name:
                self.assigned_calls[dotted] = call_name
            elif isinstance(value, cst.Call) and dotted not in self.assigned_calls:
                self.assigned_calls[dotted] = ""  # assigned from something not imported
            if loops or scope is not self.module_scope:
                self._add(scope, "assign", node, dotted, blocks, loops, no_grad, value)

    def _call(self, node: cst.Call, scope, blocks, loops, no_grad, is_statement, qualname) -> None:
        func = node.func
        if isinstance(func, cst.Attribute):
            attr = func.attr.value
            receiver = func.value
            recv_name = dotted_name(receiver)
            if attr == "backward":
                framework = recv_name is not None and bool(name_tokens(recv_name) & _FRAMEWORK_WORDS)
                self._add(scope, "fw_backward" if framework else "backward", node, recv_name, blocks, loops,
                          no_grad, receiver)
            elif attr == "manual_backward":
                self._add(scope, "fw_backward", node, recv_name, blocks, loops, no_grad, receiver)
            elif attr == "step":
                self._add(scope, "step", node, recv_name, blocks, loops, no_grad, is_statement)
            elif attr == "zero_grad":
                self._add(scope, "zero", node, recv_name, blocks, loops, no_grad)
            elif attr == "zero_" and recv_name and "grad" in recv_name.split("."):
                self._add(scope, "zero", node, recv_name, blocks, loops, no_grad)
            elif attr == "eval" and not node.args:
                self._add(scope, "eval", node, recv_name, blocks, loops, no_grad)
            elif attr == "train":
                mode = get_arg(node, 0, "mode")
                off = isinstance(mode, cst.Name) and mode.value == "False"
                self._add(scope, "eval" if off else "train", node, recv_name, blocks, loops, no_grad)
            elif attr == "append" and loops:
                self._add(scope, "append", node, recv_name, blocks, loops, no_grad)
            elif attr == "requires_grad_":
                self._add(scope, "grad", node, recv_name, blocks, loops, no_grad)
        name = dotted_name(func)
        if name is not None:
            resolved = qualname(func)
            if resolved in ("torch.autograd.backward", "torch.autograd.grad"):
                kind = "backward" if resolved.endswith("backward") else "grad"
                self._add(scope, kind, node, None, blocks, loops, no_grad)
            elif isinstance(func, cst.Name) and "zero_grad" in name:  # a helper like `zero_grad(model)`
                self._add(scope, "zero", node, name, blocks, loops, no_grad)
            self._add(scope, "call", node, name, blocks, loops, no_grad, resolved)

    # ---- indexes ----------------------------------------------------------------------------
    def _index(self) -> None:
        self.functions: dict[str, list[Scope]] = defaultdict(list)
        for scope in self.scopes[1:]:
            self.functions[scope.name].append(scope)
        self.callers: dict[Scope, list[Event]] = defaultdict(list)
        self.callees: dict[Scope, list[tuple[Event, Scope]]] = defaultdict(list)
        self.mode_receivers: set[str] = set()
        self.eval_receivers: set[str] = set()
        for scope in self.scopes:
            for event in scope.events:
                if event.kind == "call":
                    for callee in self.local_targets(event):
                        self.callers[callee].append(event)
                        self.callees[scope].append((event, callee))
                elif event.kind in ("eval", "train") and event.name:
                    self.mode_receivers.add(event.name)
                    if event.kind == "eval":
                        self.eval_receivers.add(event.name)
        self._summaries: dict[tuple[Scope, str], bool] = {}
        self._steppers: dict[Scope, bool] = {}
        self._loop_events: dict[Scope, dict[cst.CSTNode, list[Event]]] = {}

    def local_targets(self, event: Event) -> list[Scope]:
        """The functions of this file a call may run: `f(...)`, `self.f(...)`, `cls.f(...)`."""
        name = event.name
        head, _, rest = name.partition(".")
        if not rest:
            return self.functions.get(name, [])
        if head in ("self", "cls") and "." not in rest:
            return [s for s in self.functions.get(rest, []) if s.class_name is not None]
        return []

    def reaches(self, scope: Scope, kinds: frozenset[str], _seen=None) -> bool:
        """Whether the function, or one it calls in this file, has an event of these kinds."""
        key = (scope, ",".join(sorted(kinds)))
        if key in self._summaries:
            return self._summaries[key]
        seen = _seen if _seen is not None else set()
        if scope in seen:
            return False
        seen.add(scope)
        found = any(e.kind in kinds for e in scope.events) or any(
            self.reaches(callee, kinds, seen) for _, callee in self.callees[scope])
        if _seen is None or found:
            self._summaries[key] = found
        return found

    def reaches_optimizer_step(self, scope: Scope, _seen=None) -> bool:
        """Whether the function, or one it calls in this file, steps an optimizer."""
        if scope in self._steppers:
            return self._steppers[scope]
        seen = _seen if _seen is not None else set()
        if scope in seen:
            return False
        seen.add(scope)
        found = any(self.stepped_optimizer(e) for e in scope.events) or any(
            self.reaches_optimizer_step(callee, seen) for _, callee in self.callees[scope])
        if _seen is None or found:
            self._steppers[scope] = found
        return found

    def is_optimizer(self, dotted: str | None) -> bool:
        if not dotted:
            return False
        built = self.assigned_calls.get(dotted)
        if built:
            return is_optimizer_class(built)
        return is_optimizer_name(dotted)

    def is_scheduler(self, dotted: str | None) -> bool:
        if not dotted:
            return False
        built = self.assigned_calls.get(dotted)
        if built:
            return bool(_LR_SCHEDULE_FACTORIES.search(built))
        words = name_tokens(last_part(dotted))
        return bool(words & SCHEDULER_WORDS) and "noise" not in words

    def stepped_optimizer(self, event: Event) -> str | None:
        """The optimizer an optimizer-step event steps: `opt.step()` or `scaler.step(opt)`."""
        if event.kind != "step":
            return None
        if event.name and "scaler" in name_tokens(last_part(event.name)):
            args = positional_args(event.node)
            arg = dotted_name(args[0].value) if args else None
            return arg if self.is_optimizer(arg) or arg else None
        return event.name if self.is_optimizer(event.name) else None

    def is_scheduler_step(self, event: Event) -> bool:
        # A torch scheduler's step takes at most an epoch or a metric and returns nothing useful;
        # diffusion schedulers' `step(output, t, sample)` return the next sample, and other libraries'
        # `step(epoch)` (timm) set the rate for an explicit epoch, so may rightly come first.
        if event.kind != "step" or event.extra is not True or not self.is_scheduler(event.name):
            return False
        torch_built = (self.assigned_calls.get(event.name) or "").startswith("torch.optim.lr_scheduler.")
        return not event.node.args or (torch_built and len(event.node.args) == 1)

    def loop_events(self, scope: Scope) -> dict[cst.CSTNode, list[Event]]:
        """Each loop of the scope with the events inside it (nested blocks included), in order."""
        grouped = self._loop_events.get(scope)
        if grouped is None:
            grouped = self._loop_events[scope] = defaultdict(list)
            for event in scope.events:
                for loop in event.loops:
                    grouped[loop].append(event)
        return grouped


_TORCH_PACKAGES = ("torch", "lightning", "pytorch_lightning", "accelerate", "transformers", "timm",
                   "torchvision", "deepspeed")


def loop_facts(ctx) -> LoopFacts | None:
    """The file's loop facts, built on first request (at leave_Module); None for files not using torch."""
    uses_torch = any(ctx.imports.imports_module(p) for p in _TORCH_PACKAGES)
    return ctx.facts(LoopFacts) if uses_torch else None
