"""Path 1: torch.fx symbolic tracing, then shape propagation, node by node, into OpRecords.

The tracer records stack traces and, for every node, the exact span (line and columns) of the
expression in the checked file that created it: the innermost frame of that file at the moment
the node was made, so a node made inside library code maps to the user line that called into it.
"""

from __future__ import annotations

import inspect
from typing import Any

import torch
import torch.fx
from torch.fx.passes.shape_prop import ShapeProp

from nnlint.trace.checks import (
    FACTORIES,
    NOT_OPS,
    Locator,
    OpRecord,
    activation_stats,
    module_op,
    op_name,
    relu_stats,
    summarize,
)


class _LocatingTracer(torch.fx.Tracer):
    def __init__(self, locate: Locator):
        super().__init__()
        # fx's own `record_stack_traces` symbolizes tracebacks through torch._dynamo (over 10 s of
        # imports on first use) and keeps no columns: the frame is recorded here instead.
        self.record_stack_traces = False
        self._locate = locate

    def create_node(self, kind, target, args, kwargs, name=None, type_expr=None):
        node = super().create_node(kind, target, args, kwargs, name, type_expr)
        loc = self._locate()
        node.meta["nnlint_loc"] = loc
        if loc is not None:
            node.stack_trace = f'File "{self._locate.source_file}", line {loc.line}'
        return node


def _is_data(value: Any) -> bool:
    """Whether an input must stay symbolic (it holds tensors); other inputs are specialized."""
    if isinstance(value, torch.Tensor):
        return True
    if isinstance(value, (list, tuple)):
        return any(_is_data(v) for v in value)
    if isinstance(value, dict):
        return any(_is_data(v) for v in value.values())
    return False


def _device_fixed(node: torch.fx.Node) -> bool:
    # A device computed in the graph (`x.device`, `self.weight.device`) follows the inputs.
    return not isinstance(node.kwargs.get("device"), torch.fx.Node)


class _Recorder(ShapeProp):
    """ShapeProp that also turns every executed node into an OpRecord.

    Op nodes get their result summary (TensorInfo) as node.meta["tensor_meta"]: ShapeProp's own
    metadata extraction imports the symbolic-shapes machinery (sympy: seconds per worker).
    """

    def __init__(self, gm: torch.fx.GraphModule, values: bool):
        # Not ShapeProp.__init__: it would copy the module into any active FakeTensorMode. Fake runs
        # here use an enclosing FakeTensorMode whose tensors are already in the module.
        torch.fx.Interpreter.__init__(self, gm)
        self.fake_module = self.fake_mode = None
        self.real_module = self.module
        # On a failing node, fx's extra traceback logs through torch._logging, which imports
        # torch._dynamo (10+ s); the caller reports the failure (and falls back to eager) itself.
        self.extra_traceback = False
        self.values = values
        self.records: list[OpRecord] = []
        self.producers: dict[int, OpRecord] = {}
        self._alive: list[Any] = []

    def _propagate(self, n: torch.fx.Node) -> Any:
        result = torch.fx.Interpreter.run_node(self, n)
        n.meta["type"] = type(result)
        return result

    def _record(self, n: torch.fx.Node) -> OpRecord | None:
        """The record of an op node, made before it runs (so a failing op is on record too).

        Tensor constants (get_attr `_tensor_constant*`) are not ops: the tracer folds everything
        computed without a proxy into them, buffer arithmetic included, so a factory whose arguments
        are all literals is left to the static rule NNL307.
        """
        loc = n.meta.get("nnlint_loc")
        if n.op not in ("call_function", "call_method", "call_module"):
            return None
        args, kwargs = self.fetch_args_kwargs_from_env(n)
        if n.op == "call_module":
            name, args, kwargs = module_op(self.module.get_submodule(str(n.target)), args, kwargs)
        else:
            name = op_name(n.target)
            if name in NOT_OPS or name == "getattr" or (name == "getitem" and not _is_data(args[0])):
                return None
        return OpRecord(name, summarize(args, self.values), summarize(kwargs, self.values), loc,
                        device_fixed=name in FACTORIES and _device_fixed(n))

    def run_node(self, n: torch.fx.Node) -> Any:
        rec = self._record(n)
        if rec is None:
            return self._propagate(n)
        self.records.append(rec)
        if self.values and rec.op == "relu":
            args, _ = self.fetch_args_kwargs_from_env(n)
            rec.stats = relu_stats(rec.op, args)
        result = self._propagate(n)
        rec.out = summarize(result, self.values)
        n.meta["tensor_meta"] = rec.out
        if self.values:
            rec.stats.update(activation_stats(rec.op, result))
            if isinstance(result, torch.Tensor):
                self.producers[id(result)] = rec
                self._alive.append(result)
        return result


class FxTrace:
    def __init__(self, gm: torch.fx.GraphModule, records: list[OpRecord], output: Any,
                 producers: dict[int, OpRecord]):
        self.graph_module = gm
        self.records = records
        self.output = output
        self._producers = producers

    def producer(self, tensor: Any) -> OpRecord | None:
        return self._producers.get(id(tensor))


def _concrete_inputs(model: torch.nn.Module, args: tuple, kwargs: dict) -> dict:
    """Forward's parameters that get no tensor: traced as constants (defaults or the given values)."""
    signature = inspect.signature(model.forward)
    for param in signature.parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise TypeError("forward takes *args/**kwargs, which symbolic tracing cannot bind")
    bound = signature.bind(*args, **kwargs)
    return {name: bound.arguments.get(name, param.default) for name, param in signature.parameters.items()
            if not (name in bound.arguments and _is_data(bound.arguments[name]))}


def trace(model: torch.nn.Module, args: tuple, kwargs: dict, locate: Locator, *, values: bool) -> FxTrace:
    """Symbolically trace `model`, then run the graph on the inputs recording every node.

    Raises whatever symbolic tracing or propagation raises; the caller falls back to eager.
    Under an active FakeTensorMode the propagation runs on fake tensors.
    """
    concrete = _concrete_inputs(model, args, kwargs)
    tracer = _LocatingTracer(locate)
    graph = tracer.trace(model, concrete_args=concrete or None)
    gm = torch.fx.GraphModule(tracer.root, graph)
    # Concrete (specialized) arguments keep a placeholder each: feed every placeholder by name.
    inputs = _bind_all(model, args, kwargs)
    run_args = [inputs[n.target.lstrip("*")] for n in graph.nodes if n.op == "placeholder"]
    recorder = _Recorder(gm, values)
    with torch.no_grad():
        output = recorder.propagate(*run_args)
    return FxTrace(gm, recorder.records, output, recorder.producers)


def _bind_all(model: torch.nn.Module, args: tuple, kwargs: dict) -> dict:
    signature = inspect.signature(model.forward)
    bound = signature.bind(*args, **kwargs)
    bound.apply_defaults()
    return dict(bound.arguments)
