"""The traced hazards NNL701-NNL711, computed from recorded ops (and, for the value checks, live tensors).

Both tracing paths (torch.fx in fxpath.py, eager in eagerpath.py) produce the same `OpRecord`s: a
canonical op name, its arguments with tensors summarized as `TensorInfo`, its result, and the
location in the checked file. The shape checks only read those records; the gradient test (NNL704,
NNL709) and the initial-loss test (NNL707) run the model again here. Runs only in worker processes.
"""

from __future__ import annotations

import linecache
import math
import os
import re
import sys
import types
from dataclasses import dataclass, field
from typing import Any

import torch

# -- records -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TensorInfo:
    shape: tuple[int, ...]
    dtype: str
    floating: bool
    finite: bool | None = None  # None when values are unknown (fake tensors) or not floating

    @property
    def numel(self) -> int:
        return math.prod(self.shape)


@dataclass(frozen=True)
class Loc:
    line: int
    column: int  # 1-based
    end_line: int
    end_column: int  # 1-based, exclusive


@dataclass
class OpRecord:
    op: str  # canonical name: "sub", "view", "softmax", "mse_loss", "module:Linear", ...
    args: tuple
    kwargs: dict
    loc: Loc | None
    out: Any = None
    device_fixed: bool = False  # a factory whose device does not come from a tensor
    stats: dict = field(default_factory=dict)  # value statistics of the output (real tensors only)


def summarize(value: Any, values: bool) -> Any:
    """Plain-data view of an op argument or result: tensors become TensorInfo."""
    if isinstance(value, torch.Tensor):
        floating = value.is_floating_point() or value.is_complex()
        finite = None
        if values and floating and value.device.type != "meta":
            finite = bool(torch.isfinite(value).all())
        shape = tuple(int(s) for s in value.shape)
        return TensorInfo(shape, str(value.dtype).removeprefix("torch."), floating, finite)
    if isinstance(value, torch.Size):
        return tuple(int(s) for s in value)
    if isinstance(value, (int, float, bool, str, type(None))):
        return value
    if isinstance(value, (torch.device, torch.dtype)):
        return str(value)
    if isinstance(value, (list, tuple)):
        return tuple(summarize(v, values) for v in value)
    if isinstance(value, dict):
        return {k: summarize(v, values) for k, v in value.items()}
    return type(value).__name__


def tensors_in(value: Any) -> list[TensorInfo]:
    if isinstance(value, TensorInfo):
        return [value]
    if isinstance(value, tuple):
        return [t for v in value for t in tensors_in(v)]
    if isinstance(value, dict):
        return [t for v in value.values() for t in tensors_in(v)]
    return []


def first_tensor(value: Any) -> TensorInfo | None:
    found = tensors_in(value)
    return found[0] if found else None


_BINARY = {
    "add", "sub", "mul", "div", "truediv", "floordiv", "mod", "pow", "matmul", "and", "or", "xor",
    "lshift", "rshift",
}
_ALIASES = {
    "truediv": "div", "true_divide": "div", "divide": "div", "subtract": "sub", "multiply": "mul",
    "floordiv": "floor_divide", "mod": "remainder", "absolute": "abs", "clip": "clamp",
    "greater": "gt", "less": "lt", "greater_equal": "ge", "less_equal": "le", "not_equal": "ne",
}


def op_name(target: Any) -> str:
    """Canonical op name of a torch function, Tensor method or fx target: `x.add_` and `a + b` -> "add"."""
    name = target if isinstance(target, str) else getattr(target, "__name__", type(target).__name__)
    if name.startswith("__") and name.endswith("__") and len(name) > 4:
        name = name[2:-2]
        if name[:1] in ("i", "r") and name[1:] in _BINARY:  # in-place / reflected operators
            name = name[1:]
    elif name.endswith("_") and not name.startswith("_"):  # in-place method
        name = name[:-1]
    return _ALIASES.get(name, name)


# Ops whose call a record is not worth: metadata queries.
NOT_OPS = frozenset({"get", "set", "size", "dim", "numel", "len", "is_floating_point", "is_complex",
                     "stride", "data_ptr", "element_size", "is_contiguous", "type", "repr", "format",
                     "hash", "bool", "item", "tolist", "requires_grad", "ndimension", "nelement",
                     "has_torch_function", "is_tensor"})

FACTORIES = frozenset({"zeros", "ones", "empty", "full", "rand", "randn", "randint", "arange", "range",
                       "linspace", "logspace", "eye", "tensor", "as_tensor", "randperm", "empty_strided",
                       "scalar_tensor", "tril_indices", "triu_indices"})

ACTIVATIONS = frozenset({"relu", "tanh", "sigmoid"})

# Modules the fx tracer keeps as leaves, mapped to the op their forward performs.
_MODULE_OPS = {
    "Softmax": "softmax", "LogSoftmax": "log_softmax", "Softmin": "softmin", "ReLU": "relu",
    "Tanh": "tanh", "Sigmoid": "sigmoid", "Flatten": "flatten", "Unflatten": "unflatten",
    "MSELoss": "mse_loss", "L1Loss": "l1_loss", "SmoothL1Loss": "smooth_l1_loss", "HuberLoss": "huber_loss",
    "BCELoss": "binary_cross_entropy", "BCEWithLogitsLoss": "binary_cross_entropy_with_logits",
    "KLDivLoss": "kl_div", "CrossEntropyLoss": "cross_entropy", "NLLLoss": "nll_loss",
    "SoftMarginLoss": "soft_margin_loss", "PoissonNLLLoss": "poisson_nll_loss",
    "GaussianNLLLoss": "gaussian_nll_loss", "MultiLabelSoftMarginLoss": "multilabel_soft_margin_loss",
}


def module_op(module: torch.nn.Module, args: tuple, kwargs: dict) -> tuple[str, tuple, dict]:
    """The op a leaf module call amounts to, with its arguments in functional form."""
    cls = type(module).__name__
    op = _MODULE_OPS.get(cls)
    if op is None:
        return f"module:{cls}", args, kwargs
    if op in ("softmax", "log_softmax", "softmin"):
        return op, (args[0], module.dim), {}
    return op, args, kwargs


def relu_stats(op: str, args: tuple) -> dict:
    """A ReLU is dead where its input is negative. Exact zeros are not counted: they come from branches
    zero-initialized on purpose (e.g. a residual block's last norm), which start learning at once.
    Taken before the op runs, since an in-place ReLU overwrites its input."""
    inp = args[0] if args else None
    if op != "relu" or not isinstance(inp, torch.Tensor) or not inp.is_floating_point():
        return {}
    if inp.numel() == 0 or inp.device.type == "meta":
        return {}
    with torch.no_grad():
        return {"inactive": float((inp < 0).float().mean())}


def activation_stats(op: str, out: Any) -> dict:
    if op not in ACTIVATIONS or not isinstance(out, torch.Tensor) or not out.is_floating_point():
        return {}
    if out.numel() == 0 or out.device.type == "meta":
        return {}
    with torch.no_grad():
        if op == "relu":
            return {}  # judged on its input, before it runs: see relu_stats
        if op == "tanh":
            return {"inactive": float((out.abs() > 0.99).float().mean())}
        return {"inactive": float(((out < 0.01) | (out > 0.99)).float().mean())}


# -- locations -----------------------------------------------------------------------------------


class Locator:
    """Finds the innermost frame executing code of the checked file: where an op was called from."""

    def __init__(self, source_file: str):
        self.source_file = os.path.realpath(source_file)
        self._is_user: dict[str, bool] = {}
        self._positions: dict[Any, list] = {}

    def is_user_file(self, filename: str) -> bool:
        hit = self._is_user.get(filename)
        if hit is None:
            hit = self._is_user[filename] = os.path.realpath(filename) == self.source_file
        return hit

    def __call__(self) -> Loc | None:
        frame: types.FrameType | None = sys._getframe(1)
        while frame is not None:
            if self.is_user_file(frame.f_code.co_filename):
                return self.code_loc(frame.f_code, frame.f_lasti, frame.f_lineno)
            frame = frame.f_back
        return None

    def code_loc(self, code, lasti: int, lineno: int) -> Loc:
        """The span of the instruction at `lasti` of `code` (a frame's f_lasti), else of line `lineno`."""
        positions = self._positions.get(code)
        if positions is None:
            positions = self._positions[code] = list(code.co_positions())
        index = lasti // 2
        line, end_line, col, end_col = positions[index] if 0 <= index < len(positions) else (None,) * 4
        if line is None or col is None or end_col is None:
            line = end_line = lineno
            text = linecache.getline(code.co_filename, line).rstrip("\n")
            col, end_col = len(text) - len(text.lstrip()), len(text)
            return Loc(line, col + 1, end_line, end_col + 1)
        # co_positions counts UTF-8 bytes; reports count characters.
        col = _char_offset(code.co_filename, line, col)
        end_col = _char_offset(code.co_filename, end_line or line, end_col)
        return Loc(line, col + 1, end_line or line, end_col + 1)


def _char_offset(filename: str, line: int, byte_offset: int) -> int:
    text = linecache.getline(filename, line)
    if text.isascii():
        return byte_offset
    return len(text.encode("utf-8")[:byte_offset].decode("utf-8", errors="ignore"))


def definition_loc(source_file: str, model: torch.nn.Module) -> Loc:
    """The `def forward` line of the model's class in the checked file, else its `class` line, else 1."""
    forward = getattr(type(model), "forward", None)
    code = getattr(forward, "__code__", None)
    lines = linecache.getlines(source_file) or [""]
    if code is not None and os.path.realpath(code.co_filename) == os.path.realpath(source_file):
        for number in range(code.co_firstlineno, min(len(lines), code.co_firstlineno + 50) + 1):
            match = re.search(r"\bdef\s+\w+", lines[number - 1])
            if match:
                return Loc(number, match.start() + 1, number, match.end() + 1)
    for cls in type(model).__mro__:
        pattern = re.compile(rf"^\s*class\s+{re.escape(cls.__name__)}\b")
        for number, text in enumerate(lines, 1):
            match = pattern.search(text)
            if match:
                start = len(text) - len(text.lstrip())
                return Loc(number, start + 1, number, match.end() + 1)
    return Loc(1, 1, 1, len(lines[0].rstrip("\n")) + 1)


# -- findings ------------------------------------------------------------------------------------


@dataclass
class TraceInfo:
    batch: int | None  # the batch size of the inputs (chosen coprime with the other sizes)
    fallback: Loc  # where findings without a located op go: forward's def line
    merged_batch: frozenset[int] = frozenset()  # sizes of dims a reshape made from the batch and its neighbours


@dataclass
class TracedRun:
    """What a "run" check sees: the model, its recorded ops and output, the inputs it ran on."""

    model: torch.nn.Module
    records: list[OpRecord]
    output: Any
    producer: Any  # OpRecord that produced the first output tensor, or None
    args: tuple
    kwargs: dict
    info: TraceInfo
    axis: int  # the batch axis of the inputs
    notes: list[str]
    locate: Locator | None = None  # for checks that attribute a live op to its line (NNL704, NNL712)


def finding(code: str, message: str, loc: Loc) -> dict:
    return {"code": code, "message": message, "line": loc.line, "column": loc.column,
            "end_line": loc.end_line, "end_column": loc.end_column}


def _shape(t: TensorInfo) -> str:
    return "(" + ", ".join(map(str, t.shape)) + ("," if len(t.shape) == 1 else "") + ")"


def _arg(rec: OpRecord, index: int, name: str, default: Any = None) -> Any:
    if name in rec.kwargs:
        return rec.kwargs[name]
    return rec.args[index] if len(rec.args) > index else default


def _dims(dim: Any, ndim: int) -> list[int] | None:
    if isinstance(dim, bool) or dim is None:
        return None
    items = dim if isinstance(dim, tuple) else (dim,)
    if not all(isinstance(d, int) and not isinstance(d, bool) for d in items):
        return None
    if ndim == 0 or any(not -ndim <= d < ndim for d in items):
        return None
    return [d % ndim for d in items]


_ELEMENTWISE = frozenset({
    "add", "sub", "rsub", "mul", "div", "pow", "maximum", "minimum", "fmax", "fmin", "eq", "ne", "lt",
    "gt", "le", "ge", "where", "atan2", "floor_divide", "remainder", "fmod", "and", "or", "xor",
    "logical_and", "logical_or", "logical_xor", "hypot", "copysign", "lerp", "addcmul", "addcdiv",
    "bitwise_and", "bitwise_or", "bitwise_xor", "max", "min", "squared_difference",
})


def check_broadcast(rec: OpRecord, info: TraceInfo) -> dict | None:
    """NNL701: operands of different shapes broadcast into a result larger than each of them.

    Restricted to results that hold the batch size in more dimensions than any operand does: that is
    the "every sample against every sample" signature of `(B, 1) - (B,)`, while deliberate outer
    broadcasts in forward (masks, relative positions) combine other dimensions.
    """
    if rec.op not in _ELEMENTWISE:
        return None
    operands = [t for t in tensors_in(rec.args) + tensors_in(rec.kwargs) if t.shape and t.numel > 1]
    out = first_tensor(rec.out)
    if out is None or len(operands) < 2 or len({t.shape for t in operands}) < 2:
        return None
    if out.numel <= max(t.numel for t in operands):
        return None
    if info.batch is not None and info.batch > 1:
        if out.shape.count(info.batch) <= max(t.shape.count(info.batch) for t in operands):
            return None
    shapes = f" {rec.op} ".join(_shape(t) for t in operands)
    return finding("NNL701", f"`{shapes}` broadcasts to {_shape(out)}, larger than every operand: "
                   "values are combined pairwise across the batch; make the shapes agree (e.g. "
                   "`squeeze(-1)` the prediction)", rec.loc or info.fallback)


_SAME_SHAPE_LOSSES = frozenset({
    "mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss", "binary_cross_entropy",
    "binary_cross_entropy_with_logits", "kl_div", "soft_margin_loss", "poisson_nll_loss",
    "gaussian_nll_loss", "multilabel_soft_margin_loss",
})
_CLASS_LOSSES = frozenset({"cross_entropy", "nll_loss"})


def check_loss_shapes(rec: OpRecord, info: TraceInfo) -> dict | None:
    """NNL702: a loss whose input and target shapes disagree."""
    if rec.op not in _SAME_SHAPE_LOSSES and rec.op not in _CLASS_LOSSES:
        return None
    pred, target = _arg(rec, 0, "input"), _arg(rec, 1, "target")
    if not isinstance(pred, TensorInfo) or not isinstance(target, TensorInfo):
        return None
    if rec.op in _CLASS_LOSSES and not target.floating:
        expected = (pred.shape[:1] + pred.shape[2:]) if len(pred.shape) >= 2 else ()
        if target.shape == expected:
            return None
        hint = f"class indices of shape {_shape(TensorInfo(expected, '', False))}"
    elif target.shape == pred.shape:
        return None
    else:
        hint = "a target of the same shape"
    return finding("NNL702", f"{rec.op} got input {_shape(pred)} and target {_shape(target)}; it expects "
                   f"{hint}: reshape the target or the prediction", rec.loc or info.fallback)


_SOFTMAXES = frozenset({"softmax", "log_softmax", "softmin"})


def _softmax_dim(rec: OpRecord, x: TensorInfo) -> int | None:
    dim = _arg(rec, 1, "dim")
    if dim is None:  # the legacy implicit choice of torch.nn.functional
        dim = 0 if len(x.shape) in (0, 1, 3) else 1
    dims = _dims(dim, len(x.shape))
    return dims[0] if dims else None


def check_softmax_singleton(rec: OpRecord, info: TraceInfo) -> dict | None:
    """NNL703: softmax along a dimension of size 1 is constant."""
    if rec.op not in _SOFTMAXES:
        return None
    x = _arg(rec, 0, "input")
    if not isinstance(x, TensorInfo) or not x.shape:
        return None
    dim = _softmax_dim(rec, x)
    if dim is None or x.shape[dim] != 1:
        return None
    return finding("NNL703", f"{rec.op} over dim {dim} of {_shape(x)}, which has size 1: the output is "
                   "constant and passes no gradient; apply it over the class/position dimension",
                   rec.loc or info.fallback)


_REDUCTIONS = frozenset({
    "sum", "mean", "prod", "amax", "amin", "max", "min", "std", "var", "logsumexp", "norm", "median",
    "nansum", "nanmean", "argmax", "argmin", "all", "any", "std_mean", "var_mean", "count_nonzero",
})


def reduced_dims(rec: OpRecord) -> tuple[TensorInfo, list[int]] | None:
    """The input and explicit dims of a reduction or softmax, else None."""
    if rec.op not in _REDUCTIONS and rec.op not in _SOFTMAXES:
        return None
    x = _arg(rec, 0, "input")
    if not isinstance(x, TensorInfo) or not x.shape:
        return None
    if rec.op in _SOFTMAXES:
        dim = _softmax_dim(rec, x)
        return (x, [dim]) if dim is not None else None
    if rec.op in ("max", "min") and isinstance(_arg(rec, 1, "other"), TensorInfo):
        return None  # elementwise form
    dim = _arg(rec, 2, "dim") if rec.op == "norm" else _arg(rec, 1, "dim")
    dims = _dims(dim, len(x.shape))
    return (x, dims) if dims else None


def check_batch_reduction(rec: OpRecord, info: TraceInfo) -> dict | None:
    """NNL705: a reduction or softmax along the batch dimension (a per-sample result stays per-sample)."""
    if not info.batch or info.batch < 2:
        return None
    found = reduced_dims(rec)
    out = first_tensor(rec.out)
    if found is None or out is None or not out.shape:  # a full reduction to a scalar is a loss
        return None
    x, dims = found
    where = dims[0] if len(dims) == 1 else dims
    if rec.op in _SOFTMAXES and info.batch not in x.shape and x.shape[dims[0]] in info.merged_batch:
        # (T*B, V) after `view(-1, V)`: normalizing over the rows normalizes over every sample at once.
        return finding("NNL705", f"{rec.op} over dim {where} of {_shape(x)}, whose rows hold the batch "
                       f"(size {info.batch}) merged by a reshape: samples' outputs depend on each other; "
                       "normalize over the last dim", rec.loc or info.fallback)
    # With B also the size of another dimension (a 7x7 grid at B=7), which one is the batch is unknown.
    if x.shape.count(info.batch) != 1 or not any(x.shape[d] == info.batch for d in dims):
        return None
    return finding("NNL705", f"{rec.op} over dim {where} of {_shape(x)}, "
                   f"the batch dimension (size {info.batch}): each sample's output depends on the "
                   "others; reduce over the feature dimensions", rec.loc or info.fallback)


def batch_merged_sizes(records: list[OpRecord], batch: int | None) -> frozenset[int]:
    """Sizes of the dims that reshapes made by merging the batch dim with its neighbours: (T, B, V) ->
    (T*B, V) gives T*B. Only products the output really has, of runs of adjacent dims holding B."""
    found: set[int] = set()
    if not batch or batch < 2:
        return frozenset()
    for rec in records:
        src, dst = _arg(rec, 0, "input"), first_tensor(rec.out)
        if rec.op not in _RESHAPES or not isinstance(src, TensorInfo) or dst is None:
            continue
        if src.shape.count(batch) != 1 or batch in dst.shape:
            continue
        at = src.shape.index(batch)
        for start in range(at + 1):
            for end in range(at + 1, len(src.shape) + 1):
                size = math.prod(src.shape[start:end])
                if end - start > 1 and size in dst.shape:
                    found.add(size)
    return frozenset(found)


def check_device(rec: OpRecord, info: TraceInfo) -> dict | None:
    """NNL710: a tensor created in forward on a fixed device."""
    out = first_tensor(rec.out)
    if not rec.device_fixed or out is None or not out.shape:  # 0-d tensors may mix with any device
        return None
    return finding("NNL710", f"{rec.op} creates a {_shape(out)} tensor on a fixed device inside forward: it "
                   "breaks (or copies every step) once the model is on a GPU; pass `device=x.device` "
                   "or register a buffer", rec.loc or info.fallback)


_RESHAPES = frozenset({"view", "reshape", "flatten", "unflatten", "view_as", "reshape_as"})


def prefix_products(shape: tuple[int, ...]) -> list[int]:
    products, total = [], 1
    for size in shape:
        total *= size
        products.append(total)
    return products


def is_aligned_reshape(src: tuple[int, ...], dst: tuple[int, ...]) -> bool:
    """Whether `dst` regroups adjacent dimensions of `src` in order.

    Each output boundary (prefix product) must be an input boundary or split a single input
    dimension evenly. With pairwise coprime sizes this holds exactly for in-order regroupings.
    """
    bounds = [1] + prefix_products(src)
    if bounds[-1] != math.prod(dst) or bounds[-1] == 0:
        return True
    for product in prefix_products(dst)[:-1]:
        if product in bounds:
            continue
        # The input dimension `product` falls inside (the last one, past any size-1 dimensions).
        index = max(i for i, b in enumerate(bounds[:-1]) if b < product)
        below = bounds[index]
        if product % below or src[index] % (product // below):
            return False
    return True


def check_reshape(rec: OpRecord, info: TraceInfo) -> dict | None:
    """NNL711: a reshape that scrambles elements instead of regrouping neighbours."""
    if rec.op not in _RESHAPES:
        return None
    src, dst = _arg(rec, 0, "input"), first_tensor(rec.out)
    if not isinstance(src, TensorInfo) or dst is None or src.numel != dst.numel:
        return None
    if is_aligned_reshape(src.shape, dst.shape):
        return None
    return finding("NNL711", f"{rec.op} {_shape(src)} -> {_shape(dst)} does not regroup adjacent "
                   "dimensions in order: it scrambles elements across positions or samples; "
                   "permute/transpose the dimensions first", rec.loc or info.fallback)


# -- value checks on recorded statistics ---------------------------------------------------------


def _has_nonfinite_constant(value: Any) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, tuple):
        return any(_has_nonfinite_constant(v) for v in value)
    if isinstance(value, dict):
        return any(_has_nonfinite_constant(v) for v in value.values())
    return False


def check_nonfinite(run: TracedRun) -> list[dict]:
    """NNL706: the first op that turned finite inputs into NaN/Inf (deliberate `-inf` masks aside)."""
    info = run.info
    for rec in run.records:
        outs = tensors_in(rec.out)
        if not any(t.finite is False for t in outs):
            continue
        inputs = tensors_in(rec.args) + tensors_in(rec.kwargs)
        if any(t.finite is False for t in inputs) or _has_nonfinite_constant((rec.args, rec.kwargs)):
            continue
        return [finding("NNL706", f"{rec.op} produced NaN/Inf from finite inputs on a standard-normal input "
                        "at initialization; guard it (clamp, epsilon, or a numerically stable variant)",
                        rec.loc or info.fallback)]
    return []


def check_activations(run: TracedRun) -> list[dict]:
    """NNL708: over 90% of an activation's outputs dead (ReLU) or saturated (tanh/sigmoid)."""
    found = []
    info = run.info
    for rec in run.records:
        inactive = rec.stats.get("inactive")
        if inactive is None or inactive <= 0.9:
            continue
        state = "zero (dead)" if rec.op == "relu" else "saturated"
        found.append(finding("NNL708", f"{inactive:.0%} of this {rec.op}'s outputs are {state} at "
                             "initialization on a standard-normal input: almost no gradient flows; check "
                             "the input scale and the weight/bias init", rec.loc or info.fallback))
    return found


# -- checks that run the model -------------------------------------------------------------------


def initial_loss(output: Any, loc: Loc, info: TraceInfo) -> list[dict]:
    """NNL707: expected cross-entropy of the initial logits on uniform labels, vs ln(C)."""
    if not isinstance(output, torch.Tensor) or output.dim() != 2 or not output.is_floating_point():
        return []
    batch, classes = output.shape
    if classes < 2 or (info.batch and batch != info.batch):
        return []
    with torch.no_grad():
        # Expected loss over uniformly random labels: the mean negative log-probability.
        loss = float(-torch.log_softmax(output.double(), dim=1).mean())
    bound = math.log(classes)
    if not math.isfinite(loss) or loss <= bound + 1:
        return []
    return [finding("NNL707", f"initial cross-entropy on uniform random labels is {loss:.2f}, well above "
                    f"ln({classes}) = {bound:.2f}: the classifier starts overconfident; initialize the last "
                    "layer's weights to zero/small values or set its bias from the class priors", loc)]


def gradient_norm_findings(model: torch.nn.Module, info: TraceInfo) -> list[dict]:
    """NNL709: first vs last layer weight gradient norms after one backward pass.

    Layers are the modules with a matrix or kernel `weight`, in registration order: free parameters
    (class tokens, position embeddings, scales) are not layers.
    """
    norms = [(f"{name}.weight" if name else "weight", float(m.weight.grad.double().norm()))
             for name, m in model.named_modules()
             if isinstance(getattr(m, "weight", None), torch.nn.Parameter) and m.weight.dim() >= 2
             and m.weight.grad is not None]
    if len(norms) < 2:
        return []
    (first_name, first), (last_name, last) = norms[0], norms[-1]
    if math.isfinite(first) and math.isfinite(last):
        low, high = min(first, last), max(first, last)
        # An exactly zero gradient comes from a zero-initialized layer (a recommended head init,
        # which blocks every gradient below it at step 0), not from vanishing.
        if low == 0 or high / low <= 1e4:
            return []
        ratio = f"differ by {high / low:.1e}x"
    else:
        ratio = "are not finite"
    return [finding("NNL709", f"at initialization the gradient norms of the first layer ({first_name}: "
                    f"{first:.2e}) and the last layer ({last_name}: {last:.2e}) {ratio}: use a standard "
                    "init, normalization layers or residual connections", info.fallback)]
