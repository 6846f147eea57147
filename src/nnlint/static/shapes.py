"""NNL3: shape smells visible in the source."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import cast

import libcst as cst

from nnlint.diagnostics import Applicability, Diagnostic, Fix, Severity
from nnlint.imports import dotted_name
from nnlint.rule import Invalid, NodeFix, StaticRule
from nnlint.static.calls import get_arg, has_arg, positional_args
from nnlint.static.dataflow_shapes import (
    ACTIVATION,
    INPUT,
    LAYER,
    MODEL,
    REDUCTIONS,
    FunctionScope,
    ModelScopeRule,
    int_value,
    mentions_dim_zero,
    target_names,
)
from nnlint.tree import walk, walk_no_defs

_SOFTMAX_FUNCTIONS = frozenset(
    {
        "torch.softmax", "torch.log_softmax", "torch.special.softmax", "torch.special.log_softmax",
        "torch.nn.functional.softmax", "torch.nn.functional.log_softmax",
        "torch.nn.functional.softmin",
    }
)
_SOFTMAX_MODULES = frozenset({"torch.nn.Softmax", "torch.nn.LogSoftmax", "torch.nn.Softmin"})
_LAST_DIM = "dim=-1"  # what the fix passes, unless tracing saw torch pick dim 1


class SoftmaxImplicitDim(StaticRule):
    """Softmax without an explicit `dim`: torch guesses the dimension by a legacy rule.

    `F.softmax(x)`, `nn.Softmax()` and friends without `dim` pick dim 0 for 0-, 1- and 3-D
    inputs and dim 1 otherwise, and only warn. On a `(batch, classes)` tensor that happens to be right,
    but on a 3-D `(batch, seq, vocab)` tensor it normalizes over the batch, and the model still trains.
    Always pass `dim`, usually `dim=-1`.

    From the source alone the input's rank is unknown, so the fix adds `dim=-1` marked unsafe: on a
    4-D `(N, C, H, W)` map the implicit choice was the channel dim 1, which may be what was meant.
    `nnlint check` makes the fix exact when tracing ran the call on the input the code declares (in
    the config, an `# nnlint: input=` comment, or example calls such as `model(torch.randn(8, 16))`,
    all of one rank) and every run of it saw one rank: torch's own choice, made explicit and so safe,
    is `dim=-1` for 1- and 2-D inputs and `dim=1` for 4-D and higher. On a 3-D input the fix stays
    `dim=-1` and unsafe on purpose: it changes the result, which normalized over dim 0 (the bug). On a
    guessed input, with `--static-only`, or where runs disagree, the fix stays the unsafe `dim=-1`.
    """

    code = "NNL302"
    name = "softmax-implicit-dim"
    severity = Severity.WARNING
    fixable = True
    VALID = (
        "import torch.nn.functional as F\nprobs = F.softmax(logits, dim=-1)\n",
        "import torch\nprobs = torch.softmax(logits, 1)\n",
        "from torch import nn\nhead = nn.Softmax(dim=1)\n",
        "import torch.nn.functional as F\nprobs = F.softmax(logits, -1, _stacklevel=5)\n",
        "from scipy.special import softmax\np = softmax(scores)\n",
    )
    INVALID = (
        Invalid("import torch.nn.functional as F\nprobs = F.softmax(logits)  # <-\n",
                fixed="import torch.nn.functional as F\nprobs = F.softmax(logits, dim=-1)\n"),
        Invalid("from torch.nn import functional\nlogp = functional.log_softmax(logits)  # <-\n",
                fixed="from torch.nn import functional\nlogp = functional.log_softmax(logits, dim=-1)\n"),
        Invalid("import torch as T\nhead = T.nn.Softmax()  # <-\n", fixed="import torch as T\n"
                "head = T.nn.Softmax(dim=-1)\n"),
        Invalid("from torch import nn\nlayer = nn.LogSoftmax()  # <-\n",
                fixed="from torch import nn\nlayer = nn.LogSoftmax(dim=-1)\n"),
        Invalid("import torch.nn.functional as F\np = F.softmax(x, _stacklevel=5)  # <-\n",
                fixed="import torch.nn.functional as F\np = F.softmax(x, _stacklevel=5, dim=-1)\n"),
        Invalid("import torch.nn.functional as F\np = F.softmax(  # <-\n    x,\n)\n",
                fixed="import torch.nn.functional as F\np = F.softmax(\n    x, dim=-1,\n)\n"),
    )

    def visit_Call(self, node: cst.Call) -> None:
        name = self.ctx.call_name(node)
        if name in _SOFTMAX_FUNCTIONS and not has_arg(node, 1, "dim"):
            self.report(node, f"`{name.rsplit('.', 1)[1]}` called without `dim`: pass it explicitly (usually dim=-1)",
                        self._fix(node))
        elif name in _SOFTMAX_MODULES and not has_arg(node, 0, "dim"):
            self.report(node, f"`nn.{name.rsplit('.', 1)[1]}()` without `dim`: pass it explicitly (usually dim=-1)",
                        self._fix(node))

    def _fix(self, node: cst.Call) -> NodeFix | None:
        """Add `dim=-1` after the last argument. Unsafe: torch's implicit choice is dim 0 for 0-, 1- and
        3-D inputs and dim 1 otherwise, so -1 keeps the result only for 1- and 2-D inputs; on a 4-D
        `(N, C, H, W)` map the channel dim 1 may be what was meant (`with_traced_rank` knows which)."""
        if any(arg.star for arg in node.args):
            return None  # `*args` / `**kwargs` may already carry dim
        if not node.args:
            dim = cst.Arg(cst.UnaryOperation(cst.Minus(), cst.Integer("1")),
                          keyword=cst.Name("dim"), equal=cst.AssignEqual(cst.SimpleWhitespace(""),
                                                                         cst.SimpleWhitespace("")))
            return NodeFix(f"pass {_LAST_DIM}", ((node, node.with_changes(args=[dim])),), Applicability.UNSAFE)
        last = node.args[-1].value
        return NodeFix(f"pass {_LAST_DIM}", ((last, f"{self.ctx.module.code_for_node(last)}, {_LAST_DIM}"),),
                       Applicability.UNSAFE)

    @staticmethod
    def with_traced_rank(diagnostic: Diagnostic, rank: int) -> Diagnostic:
        """The finding with its fix made exact by the rank of the input tracing saw at this call: torch's
        own choice made explicit (safe) for 1-, 2- and 4+-D inputs; `dim=-1`, still unsafe and now
        saying why, for 3-D ones; unchanged for 0-D."""
        fix = diagnostic.fix
        if fix is None or rank <= 0:
            return diagnostic
        if rank == 3:
            return replace(diagnostic,
                           message=f"{diagnostic.message}; traced on a 3-D input, it normalizes over dim 0 "
                                   "(usually the batch)",
                           fix=replace(fix, message=f"pass {_LAST_DIM} (changes the result: on the traced 3-D "
                                                    "input torch normalizes over dim 0)"))
        if rank <= 2:
            return replace(diagnostic, fix=Fix(f"pass {_LAST_DIM} (torch's own choice on the traced {rank}-D input)",
                                               fix.edits, Applicability.SAFE))
        *kept, last = fix.edits  # the one edit, which ends in `dim=-1` (and the call's parenthesis)
        head, found, tail = last.content.rpartition(_LAST_DIM)
        if not found:
            return diagnostic
        return replace(diagnostic, message=f"{diagnostic.message}; traced on a {rank}-D input, torch picks dim 1",
                       fix=Fix(f"pass dim=1 (torch's own choice on the traced {rank}-D input)",
                               (*kept, replace(last, content=f"{head}dim=1{tail}")), Applicability.SAFE))


@dataclass
class _DimScope:
    """What one function knows about dims: `b, c, h, w = x.shape` binds b to (x, x's version, 0)."""

    dims: dict[str, tuple[str, int, int | None]] = field(default_factory=dict)  # None: the whole shape
    versions: dict[str, int] = field(default_factory=dict)  # bumped on each assignment to a name
    ndims: dict[tuple[str, int], int] = field(default_factory=dict)  # (source, version) -> rank
    shift_trick: bool = False


class ReshapeAsTranspose(StaticRule):
    """`view`/`reshape` that lists the source's dimensions in another order: it scrambles elements.

    `b, h, w = x.shape; x.view(b, w, h)` does not swap two axes: view and reshape keep the memory
    order and only re-cut it, so every row now mixes values of different rows. The model still trains,
    on garbage. Swap axes with `permute`/`transpose` (then `reshape` if dimensions must also merge).
    """

    code = "NNL301"
    name = "reshape-as-transpose"
    severity = Severity.WARNING
    VALID = (
        "def rel_shift(x):\n    b, h, q, k = x.shape\n    return x.reshape(b, h, k, q)[:, :, 1:]\n",
        "def f(v):\n    b, h, w, c, _, _ = v.shape\n    return v.reshape(b * h * w, c, h, w)\n",
        "def f(x):\n    b, c, h, w = x.shape\n    return x.view(b, c * h * w)\n",
        "def f(x):\n    b, c, h, w = x.shape\n    return x.view(b, -1), x.reshape(b, c, h * w)\n",
        "def f(x):\n    b, c, h, w = x.shape\n    return x.view(b, c, h // 2, 2, w)\n",
        "def f(x):\n    b, c, h, w = x.shape\n    x = x.permute(0, 2, 3, 1)\n    return x.reshape(b, h * w, c)\n",
        "def f(x):\n    b, c, h, w = x.shape\n    return x.permute(0, 2, 3, 1).reshape(b, h * w, c)\n",
        "def f(x, y):\n    b, h, w = x.shape\n    return y.view(b, w, h)\n",
        "def f(x):\n    n = x.size(0)\n    return x.view(n, x.size(1), -1)\n",
        "def f(x):\n    size = x.size()\n    return x.view(size[0], size[1] * size[2])\n",
    )
    INVALID = (
        "def f(x):\n    b, h, w = x.shape\n    return x.view(b, w, h)  # <-\n",
        "def f(x):\n    return x.reshape(x.size(1), x.size(0))  # <-\n",
        "def f(x):\n    b, c, h, w = x.shape\n    return x.view(b, h * w, c)  # <-\n",
        "import torch\ndef f(x):\n    b, t, d = x.size()\n    return torch.reshape(x, (b, d, t))  # <-\n",
        "def f(x):\n    shape = x.shape\n    return x.reshape([shape[0], shape[2], shape[1]])  # <-\n",
        "def f(x):\n    n, c = x.shape[0], x.shape[1]\n    y = x.view(c, n, -1)  # <-\n",
    )

    def __init__(self, ctx):
        super().__init__(ctx)
        self._scopes = [_DimScope()]

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        # Transformer-XL's relative shift re-cuts a (.., q, k) score matrix as (.., k, q) on purpose.
        self._scopes.append(_DimScope(shift_trick="shift" in node.name.value.lower()))

    def leave_FunctionDef(self, node: cst.FunctionDef) -> None:
        self._scopes.pop()

    def _rebind(self, names: list[str]) -> None:
        scope = self._scopes[-1]
        for name in names:
            scope.versions[name] = scope.versions.get(name, 0) + 1
            scope.dims.pop(name, None)

    def leave_Assign(self, node: cst.Assign) -> None:
        for target in node.targets:
            self._assign(target.target, node.value)

    def leave_AnnAssign(self, node: cst.AnnAssign) -> None:
        if node.value is not None:
            self._assign(node.target, node.value)

    def leave_AugAssign(self, node: cst.AugAssign) -> None:
        # `h *= 2` changes a dim's value; `x += 1` keeps x's layout.
        for name in target_names(node.target):
            self._scopes[-1].dims.pop(name, None)

    def visit_For(self, node: cst.For) -> None:
        self._rebind(target_names(node.target))

    def _assign(self, target: cst.BaseExpression, value: cst.BaseExpression) -> None:
        names = target_names(target)
        if not names:
            dotted = dotted_name(target)  # `self.x = ...` changes what `self.x` holds
            if dotted is not None:
                self._rebind([dotted])
            return
        self._rebind(names)
        scope = self._scopes[-1]
        dims, versions = scope.dims, scope.versions
        source = _shape_source(value)
        if source is not None:
            version = versions.get(source, 0)
            if isinstance(target, cst.Name):
                dims[target.value] = (source, version, None)
            elif isinstance(target, (cst.Tuple, cst.List)):
                elements = target.elements
                starred = [i for i, e in enumerate(elements) if isinstance(e.value, cst.StarredElement)]
                if not starred:
                    scope.ndims[(source, version)] = len(elements)
                for index, element in enumerate(elements):
                    if isinstance(element.value, cst.Name):
                        dim = index if not starred or index < starred[0] else index - len(elements)
                        dims[element.value.value] = (source, version, dim)
            return
        if isinstance(target, cst.Tuple) and isinstance(value, cst.Tuple) and len(target.elements) == len(
                value.elements):
            pairs = [(t.value, v.value) for t, v in zip(target.elements, value.elements)]
        else:
            pairs = [(target, value)]
        for one_target, one_value in pairs:
            where = self._dim_of(one_value)
            if where is not None and isinstance(one_target, cst.Name):
                dims[one_target.value] = (where[0], versions.get(where[0], 0), where[1])

    def _dim_of(self, expr: cst.BaseExpression) -> tuple[str, int] | None:
        """(source, dim) for `x.shape[i]`, `x.size(i)`, `x.size()[i]`, or `s[i]` with `s = x.shape`."""
        if isinstance(expr, cst.Call) and isinstance(expr.func, cst.Attribute) and expr.func.attr.value == "size":
            if len(expr.args) == 1 and expr.args[0].keyword is None:
                dim = int_value(expr.args[0].value)
                source = dotted_name(expr.func.value)
                if dim is not None and source is not None:
                    return source, dim
            return None
        if isinstance(expr, cst.Subscript) and len(expr.slice) == 1 and isinstance(expr.slice[0].slice, cst.Index):
            dim = int_value(expr.slice[0].slice.value)
            if dim is None:
                return None
            source = _shape_source(expr.value)
            if source is not None:
                return source, dim
            if isinstance(expr.value, cst.Name):
                bound = self._scopes[-1].dims.get(expr.value.value)
                if bound is not None and bound[2] is None and self._current(bound):
                    return bound[0], dim
        return None

    def _current(self, bound: tuple[str, int, int | None]) -> bool:
        return self._scopes[-1].versions.get(bound[0], 0) == bound[1]

    def _cover(self, expr: cst.BaseExpression, source: str) -> frozenset[int] | None:
        """The source dims an argument of the view spans (`h * w` -> {2, 3}), None when unknown."""
        if isinstance(expr, cst.BinaryOperation) and isinstance(expr.operator, cst.Multiply):
            left, right = self._cover(expr.left, source), self._cover(expr.right, source)
            return left | right if left is not None and right is not None else None
        if isinstance(expr, cst.Name):
            bound = self._scopes[-1].dims.get(expr.value)
            if bound is not None and bound[0] == source and bound[2] is not None and self._current(bound):
                return frozenset((bound[2],))
            return None
        where = self._dim_of(expr)
        if where is not None and where[0] == source:
            return frozenset((where[1],))
        return None

    def visit_Call(self, node: cst.Call) -> None:
        func = node.func
        if type(func) is not cst.Attribute or func.attr.value not in ("view", "reshape"):
            return
        qualname = self.ctx.call_name(node)
        if qualname == "torch.reshape":
            positional = positional_args(node)
            if len(positional) != 2:
                return
            receiver, shape_args = positional[0].value, [positional[1]]
        elif qualname is None:
            receiver, shape_args = func.value, list(node.args)
        else:
            return
        source = dotted_name(receiver)
        if source is None or self._scopes[-1].shift_trick or not shape_args:
            return
        if any(a.star or a.keyword for a in shape_args):
            return
        values = [a.value for a in shape_args]
        if len(values) == 1 and isinstance(values[0], (cst.Tuple, cst.List)):
            if any(isinstance(e, cst.StarredElement) for e in values[0].elements):
                return
            values = [e.value for e in values[0].elements]
        covers = [c for c in (self._cover(v, source) for v in values) if c is not None]
        if len(covers) < 2:
            return
        if any(d < 0 for c in covers for d in c):
            scope = self._scopes[-1]
            ndim = scope.ndims.get((source, scope.versions.get(source, 0)))
            if ndim is not None:
                covers = [frozenset(d % ndim for d in c) for c in covers]
            elif not all(d < 0 for c in covers for d in c):
                return
        if sum(map(len, covers)) != len(frozenset().union(*covers)):
            return  # a dim used twice (`h * w, c, h, w`) stands for another dim of the same size: unclear
        highest = None
        for cover in covers:
            if highest is not None and min(cover) < highest:
                method = "reshape" if qualname else func.attr.value
                self.report(node, f"`{method}` lists the dimensions of `{source}` out of order (dim {min(cover)} after "
                                  f"dim {highest}): it re-cuts memory and scrambles elements; move axes with "
                                  f"`{source}.permute(...)` or `.transpose(...)` first")
                return
            highest = max(cover) if highest is None else max(highest, max(cover))


def _shape_source(expr: cst.BaseExpression) -> str | None:
    """`x` for `x.shape` or `x.size()`."""
    if isinstance(expr, cst.Attribute) and expr.attr.value == "shape":
        return dotted_name(expr.value)
    if isinstance(expr, cst.Call) and not expr.args and isinstance(expr.func, cst.Attribute) and (
            expr.func.attr.value == "size"):
        return dotted_name(expr.func.value)
    return None


def _callee(call: cst.Call) -> str | None:
    """The last name of the called expression: `softmax` for `F.softmax(...)`; cheap pre-filter."""
    func = call.func
    if type(func) is cst.Attribute:
        return func.attr.value
    if type(func) is cst.Name:
        return func.value
    return None


_MODEL_CONTAINERS = frozenset({"torch.nn.Sequential", "torch.nn.ModuleList", "torch.nn.ModuleDict"})
_SOFTMAX_LAYERS = frozenset({"torch.nn.Softmax", "torch.nn.LogSoftmax"})
_SOFTMAX_CALLEES = frozenset({"Softmax", "LogSoftmax", "softmax", "log_softmax", "Sequential", "ModuleList",
                              "ModuleDict"})


class SoftmaxOverBatch(ModelScopeRule):
    """Softmax over dim 0 in a model: dim 0 is the batch, so samples compete with each other.

    `nn.Softmax(dim=0)` as a model's layer, or `F.softmax(self.fc(x), dim=0)` in `forward`, makes each
    sample's probabilities depend on the other samples of the batch: every column sums to 1 instead of
    every row. Training still runs and the metrics look merely poor. Normalize over the class
    dimension, usually `dim=-1` (or `dim=1`).
    """

    code = "NNL303"
    name = "softmax-over-batch"
    severity = Severity.WARNING
    VALID = (
        "from torch import nn\nclass Head(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
        "        self.act = nn.Softmax(dim=-1)\n",
        "import torch\nimport torch.nn.functional as F\nfrom torch import nn\nclass Pool(nn.Module):\n"
        "    def forward(self, hs):\n        scores = torch.stack([self.score(h) for h in hs])\n"
        "        return F.softmax(scores, dim=0)\n",
        "import torch\nimport torch.nn.functional as F\nweights = F.softmax(torch.tensor([1.0, 2.0]), dim=0)\n",
        "import torch.nn.functional as F\ndef mix(scores):\n    return F.softmax(scores, dim=0)\n",
        "import torch.nn.functional as F\nfrom torch import nn\nclass M(nn.Module):\n    def forward(self, x):\n"
        "        return F.softmax(self.fc(x), dim=1)\n",
        "from mylib import nn\nclass M(nn.Module):\n    def __init__(self):\n        self.act = nn.Softmax(dim=0)\n",
    )
    INVALID = (
        "from torch import nn\nclass Head(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
        "        self.act = nn.Softmax(dim=0)  # <-\n",
        "import torch.nn as nn\nhead = nn.Sequential(nn.Linear(8, 3), nn.LogSoftmax(0))  # <-\n",
        "import torch.nn.functional as F\nfrom torch import nn\nclass M(nn.Module):\n    def forward(self, x):\n"
        "        logits = self.fc(x)\n        return F.softmax(logits, dim=0)  # <-\n",
        "import torch\nclass M(torch.nn.Module):\n    def forward(self, x):\n"
        "        return self.fc(x).log_softmax(0)  # <-\n",
    )

    def __init__(self, ctx):
        super().__init__(ctx)
        self._in_container: set[int] = set()

    def visit_Call(self, node: cst.Call) -> None:
        callee = _callee(node)
        if callee not in _SOFTMAX_CALLEES:
            return
        qualname = self.ctx.call_name(node)
        if qualname in _MODEL_CONTAINERS:
            # Pre-order: the container is visited before the layers listed in it.
            for arg in node.args:
                items = arg.value.elements if isinstance(arg.value, (cst.List, cst.Tuple, cst.Dict)) else [arg]
                self._in_container.update(id(getattr(item, "value", None)) for item in items)
        elif qualname in _SOFTMAX_LAYERS:
            if int_value(get_arg(node, 0, "dim")) == 0 and (id(node) in self._in_container or self.model_class):
                self.report(node, f"`nn.{callee}(dim=0)` in a model normalizes over the batch: use dim=-1 "
                                  "(the class dimension)")
        elif not self.in_forward:
            return
        elif qualname in _SOFTMAX_FUNCTIONS:
            scores = get_arg(node, 0, "input")
            if int_value(get_arg(node, 1, "dim")) == 0 and self.flags(scores) & LAYER:
                self.report(node, f"`{callee}(..., dim=0)` on the layer output `{self.describe(scores)}` normalizes "
                                  "over the batch: use dim=-1 (the class dimension)")
        elif qualname is None and callee in ("softmax", "log_softmax") and isinstance(node.func, cst.Attribute):
            if int_value(get_arg(node, 0, "dim")) == 0 and self.flags(node.func.value) & LAYER:
                self.report(node, f"`.{callee}(0)` on the layer output `{self.describe(node.func.value)}` "
                                  "normalizes over the batch: use dim=-1 (the class dimension)")


_LOSS_FUNCTIONS = frozenset({"cross_entropy", "binary_cross_entropy", "binary_cross_entropy_with_logits",
                             "kl_div", "poisson_nll_loss", "gaussian_nll_loss"})


def _is_loss_call(qualname: str | None, callee: str) -> bool:
    if qualname is not None and qualname.startswith("torch.nn.functional."):
        last = qualname.rsplit(".", 1)[1]
        return last.endswith("_loss") or last in _LOSS_FUNCTIONS
    lowered = callee.lower()
    return qualname is None and ("loss" in lowered or "criterion" in lowered)


def _squeeze_receiver(call: cst.BaseExpression, qualname: str | None) -> cst.BaseExpression | None:
    """x for `x.squeeze()` / `torch.squeeze(x)` without a dim."""
    if not isinstance(call, cst.Call) or _callee(call) != "squeeze":
        return None
    if qualname == "torch.squeeze":
        return None if has_arg(call, 1, "dim") else get_arg(call, 0, "input")
    if qualname is None and isinstance(call.func, cst.Attribute) and not has_arg(call, 0, "dim"):
        return call.func.value
    return None


class SqueezeWithoutDim(ModelScopeRule):
    """`squeeze()` without a dim on an activation, a model output or a loss input.

    `squeeze()` drops every dimension of size 1. When the last batch holds a single sample, that
    includes the batch dimension: `(1, 1)` logits become a scalar, losses broadcast wrongly or fail,
    and only on that last batch. Name the dimension: `squeeze(-1)` or `squeeze(dim=1)`. Not reported
    where one sample is run on purpose and a scalar is meant: the code builds a batch of one
    (`x.unsqueeze(0)`, `x[None]`, `torch.randint(n, (1, 1))`) or uses the result as a scalar (`.item()`).
    """

    code = "NNL304"
    name = "squeeze-without-dim"
    severity = Severity.WARNING
    TRACK_MODEL_OUTPUTS = True
    VALID = (
        "import torch.nn as nn\nloss_fct = nn.MSELoss()\ndef step(model, x, labels):\n"
        "    logits = model(x)\n    return loss_fct(logits.squeeze(), labels.squeeze())\n",
        "import torch\nclass Scaler(torch.nn.Module):\n    def forward(self, x):\n"
        "        total = x.sum(dim=0)\n        return torch.squeeze(total / x.size(0))\n",
        "import torch.nn.functional as F\ndef step(model, x, y):\n    out = model(x).squeeze(-1)\n"
        "    return F.mse_loss(out, y)\n",
        "import torch\nclass M(torch.nn.Module):\n    def forward(self, x):\n"
        "        return self.fc(x).squeeze(dim=1)\n",
        "import numpy as np\narr = np.zeros((3, 1)).squeeze()\n",
        "def shape_of(img):\n    return img.squeeze()\n",
        "import torch\nclass M(torch.nn.Module):\n    def forward(self, x):\n"
        "        w = self.weight.squeeze()\n        return x * w\n",
        # one sample at a time, where a scalar is meant
        "import torch\ndef predict(net, review):\n    output = net(review)\n    pred = torch.round(output.squeeze())\n"
        "    return 'positive' if pred.item() == 1 else 'negative'\n",
        "import torch\ninput = torch.randint(ntokens, (1, 1))\nfor i in range(100):\n"
        "    output, hidden = model(input, hidden)\n    weights = output.squeeze().div(t).exp()\n"
        "    input.fill_(torch.multinomial(weights, 1)[0])\n",
        "def embed(model, img):\n    return model(img.unsqueeze(0)).squeeze()\n",
    )
    INVALID = (
        "import torch.nn.functional as F\ndef step(model, x, y):\n    out = model(x)\n"
        "    return F.mse_loss(out.squeeze(), y)  # <-\n",
        "def predict(model, x):\n    return model(x).squeeze()  # <-\n",
        "def step(model, criterion, x, y):\n    out = model(x)\n    pred = out.squeeze()  # <-\n"
        "    return criterion(pred, y)\n",
        "import torch\nfrom torch import nn\nclass M(nn.Module):\n    def forward(self, x):\n"
        "        return torch.squeeze(self.fc(x))  # <-\n",
        "for x, y in loader:\n    loss = criterion(net(x).squeeze(), y)  # <-\n",
        # a batch, with .item() on something else
        "def evaluate(model, loader):\n    for x, y in loader:\n        pred = model(x).squeeze()  # <-\n"
        "        correct += (pred.round() == y).sum().item()\n",
        # the loss is used as a scalar, not the squeezed output
        "for x, y in loader:\n    loss = criterion(net(x).squeeze(), y)  # <-\n    total += loss.item()\n",
    )

    def __init__(self, ctx):
        super().__init__(ctx)
        self._loss_inputs: set[int] = set()
        self._exempt: set[int] = set()
        self._target: str | None = None  # the name the current statement assigns
        self._one_sample: dict[int, bool] = {}  # per scope: does it run one sample at a time?

    def visit_Assign(self, node: cst.Assign) -> None:
        target = node.targets[0].target if len(node.targets) == 1 else None
        self._target = target.value if isinstance(target, cst.Name) else None

    def leave_Assign(self, node: cst.Assign) -> None:
        super().leave_Assign(node)
        self._target = None

    def visit_Call(self, node: cst.Call) -> None:
        callee = _callee(node)
        if callee is None:
            return
        if callee == "squeeze":
            receiver = _squeeze_receiver(node, self.ctx.call_name(node))
            if receiver is None or id(node) in self._exempt:
                return
            if self._scalar_intended(loss_input=id(node) in self._loss_inputs):
                return
            if id(node) in self._loss_inputs:
                self.report(node, f"`squeeze()` without dim on the loss input `{self.describe(receiver)}` also "
                                  "drops the batch dim of a one-sample batch: pass the dim, e.g. squeeze(-1)")
            elif self.flags(receiver) & (ACTIVATION if self.in_forward else MODEL):
                what = "an activation" if self.in_forward else "a model output"
                self.report(node, f"`squeeze()` without dim on {what} `{self.describe(receiver)}` also drops the "
                                  "batch dim of a one-sample batch: pass the dim, e.g. squeeze(-1)")
        elif ("loss" in callee or "criterion" in callee or "entropy" in callee or "kl_div" in callee) and (
                _is_loss_call(self.ctx.call_name(node), callee)):
            squeezed = [a.value for a in node.args if _squeeze_receiver(a.value, self.ctx.call_name(a.value))]
            # `loss_fct(logits.squeeze(), labels.squeeze())`: both sides lose the same dims, shapes still match.
            (self._exempt if len(squeezed) > 1 else self._loss_inputs).update(map(id, squeezed))

    def _scalar_intended(self, loss_input: bool) -> bool:
        """Inference on one sample, where dropping every size-1 dim is the point: the scope builds a batch of
        one (`x.unsqueeze(0)`, `x[None]`, `torch.randint(n, (1, 1))`), or the squeezed value is used as a
        scalar (`pred.item()`) or sampled from (`torch.multinomial(weights, 1)`)."""
        root = self.scope.node or self.ctx.module  # the module's own code, not its defs
        key = id(root)
        if key not in self._one_sample:
            self._one_sample[key] = any(_makes_one_sample(n) for n in walk_no_defs(root))
        if self._one_sample[key]:
            return True
        if loss_input or self._target is None:  # `loss = criterion(out.squeeze(), y)`: loss.item() says nothing
            return False
        return any(_uses_as_scalar(n, self._target) for n in walk_no_defs(root))


def _makes_one_sample(node: cst.CSTNode) -> bool:
    if isinstance(node, cst.Subscript):  # x[None], x[None, ...]
        first = node.slice[0].slice if node.slice else None
        return isinstance(first, cst.Index) and isinstance(first.value, cst.Name) and first.value.value == "None"
    if not isinstance(node, cst.Call):
        return False
    callee = _callee(node)
    if callee in ("unsqueeze", "unsqueeze_"):
        return bool(node.args) and int_value(node.args[0].value) == 0
    if callee in _FACTORIES:  # torch.randint(n, (1, 1)), torch.zeros(1, 1, d)
        sizes = [a.value for a in positional_args(node)]
        tuples = [v for v in sizes if isinstance(v, (cst.Tuple, cst.List))]
        if tuples:
            elements = tuples[-1].elements
            return len(elements) >= 2 and int_value(elements[0].value) == 1
        return callee in ("zeros", "ones", "randn", "rand", "empty") and len(sizes) >= 2 and int_value(sizes[0]) == 1
    return False


def _uses_as_scalar(node: cst.CSTNode, name: str) -> bool:
    if not isinstance(node, cst.Call):
        return False
    func = node.func
    if isinstance(func, cst.Attribute) and func.attr.value in ("item", "tolist"):
        return isinstance(func.value, cst.Name) and func.value.value == name
    if _callee(node) in ("multinomial", "int", "float") and node.args:
        value = node.args[0].value
        return isinstance(value, cst.Name) and value.value == name
    return False


_SEQUENCE_FIRST_LAYERS = frozenset({"LSTM", "GRU", "RNN", "Transformer", "TransformerEncoderLayer",
                                    "TransformerDecoderLayer", "MultiheadAttention"})


class BatchReductionInForward(ModelScopeRule):
    """A reduction over dim 0 of the forward's input: it mixes the samples of the batch.

    In `forward`, dim 0 of the input is the batch. `x.sum(0)`, `x.mean(dim=0)` or `torch.max(h, 0)`
    on it make each output depend on the other samples, so results change with the batch size and
    between training and inference. Reduce over the feature dims (`dim=1`, `dim=-1`); a normalization
    layer that means to pool over the batch should say so in its docstring. Not reported in loss modules,
    nor for a batch statistic that updates the module's state (DINO's `self.center.copy_(avg)`).
    """

    code = "NNL305"
    name = "batch-reduction-in-forward"
    severity = Severity.INFO
    VALID = (
        "from torch import nn\nclass SeqEncoder(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
        "        self.rnn = nn.GRU(8, 16)\n    def forward(self, x):\n        out, _ = self.rnn(x)\n"
        "        return out.mean(dim=0)\n",
        "from torch import nn\nclass MoE(nn.Module):\n    def forward(self, x):\n"
        "        tokens = x.reshape(-1, x.size(-1))\n        return tokens.sum(0)\n",
        "from torch import nn\nclass Pool(nn.Module):\n    def forward(self, x):\n        return x.mean(dim=1)\n",
        "from torch import nn\nclass MyBatchNorm(nn.Module):\n    def forward(self, x):\n"
        "        return x - x.mean(dim=0)\n",
        "from torch import nn\nclass Center(nn.Module):\n    \"\"\"Centers features with batch statistics.\"\"\"\n"
        "    def forward(self, x):\n        return x - x.mean(0)\n",
        "import torch\nfrom torch import nn\nclass M(nn.Module):\n    def forward(self, x):\n"
        "        return x + self.table.sum(0)\n",
        "def total(x):\n    return x.sum(0)\n",
        # DINO's teacher centering: a batch statistic stored in a buffer, not an output
        "import torch\nfrom torch import nn\nclass Dino(nn.Module):\n    def forward(self, x):\n"
        "        teacher = self.teacher(x)\n        avg = torch.cat((teacher, teacher)).mean(dim=0)\n"
        "        self.last_centers.copy_(avg)\n        return self.loss(teacher)\n",
        # a loss module's forward reduces over the batch by definition
        "from torch import nn\nclass SmoothedCriterion(nn.Module):\n    def forward(self, logits, targets):\n"
        "        out = self.criterion(logits, targets)\n        return out.mean(dim=0)\n",
    )
    INVALID = (
        "from torch import nn\nclass Standardize(nn.Module):\n    def forward(self, x):\n"
        "        return self.mlp((x - x.mean(dim=0)) / x.std(dim=0))  # <-\n",
        "from torch import nn\nclass Pool(nn.Module):\n    def forward(self, x):\n        h = self.enc(x)\n"
        "        return h.mean(dim=0)  # <-\n",
        "import torch\nfrom torch import nn\nclass M(nn.Module):\n    def forward(self, x):\n"
        "        return torch.sum(x, 0)  # <-\n",
        "from torch import nn\nclass M(nn.Module):\n    def forward(self, x):\n        v, _ = x.max(0)  # <-\n"
        "        return v\n",
    )

    def __init__(self, ctx):
        super().__init__(ctx)
        self._documented: dict[cst.ClassDef, bool] = {}
        self._time_major: set[cst.ClassDef] = set()
        self._statement: cst.CSTNode | None = None
        self._reported: set[cst.CSTNode | None] = set()

    def visit_SimpleStatementLine(self, node: cst.SimpleStatementLine) -> None:
        self._statement = node

    visit_If = visit_While = visit_SimpleStatementLine  # their tests hold expressions too

    def _documents_batch_pooling(self, scope: FunctionScope) -> bool:
        owner = scope.owner
        assert owner is not None and scope.node is not None  # called for forwards only
        known = self._documented.get(owner.node)
        if known is None:
            docs = f"{owner.node.get_docstring() or ''} {scope.node.get_docstring() or ''}".lower()
            name = owner.node.name.value.lower()
            # A loss module's forward reduces over the batch by definition.
            known = "norm" in name or "loss" in name or "criterion" in name or "batch" in docs
            self._documented[owner.node] = known
        return known

    def _updates_state(self, reduction: cst.Call) -> bool:
        """DINO's centering: a batch statistic that updates the module's state (`self.center.copy_(avg)`),
        not an output of the samples."""
        statement = self._statement
        if statement is None:
            return False
        updates = [u for n in walk(statement) if (u := _state_update(n)) is not None]
        if any(reduction in set(walk(u)) for u in updates):
            return True
        body = statement.body[0] if isinstance(statement, cst.SimpleStatementLine) and statement.body else None
        if not isinstance(body, cst.Assign) or len(body.targets) != 1 or not isinstance(body.targets[0].target,
                                                                                         cst.Name):
            return False
        name = body.targets[0].target.value
        return any(isinstance(arg, cst.Name) and arg.value == name
                   for n in walk(self.scope.node) if (u := _state_update(n)) is not None for arg in walk(u))

    def visit_Call(self, node: cst.Call) -> None:
        callee = _callee(node)
        if callee in _SEQUENCE_FIRST_LAYERS:
            # An RNN / transformer layer without batch_first=True: the class works time-major, dim 0 is time.
            owner = self.model_class
            batch_first = get_arg(node, None, "batch_first")
            if owner and self.ctx.call_name(node) == f"torch.nn.{callee}" and not (
                    isinstance(batch_first, cst.Name) and batch_first.value == "True"):
                self._time_major.add(owner.node)
            return
        if callee not in REDUCTIONS or not self.in_forward or self.scope.owner.node in self._time_major:
            return
        qualname = self.ctx.call_name(node)
        if qualname == f"torch.{callee}":
            receiver, dim = get_arg(node, 0, "input"), get_arg(node, 1, "dim")
        elif qualname is None and isinstance(node.func, cst.Attribute):
            receiver, dim = node.func.value, get_arg(node, 0, "dim")
        else:
            return
        if self._statement in self._reported:
            return  # `(x - x.mean(0)) / x.std(0)`: one finding per statement is enough
        if mentions_dim_zero(dim) and self.flags(receiver) & INPUT and not self._documents_batch_pooling(self.scope) \
                and not self._updates_state(node):
            self._reported.add(self._statement)
            self.report(node, f"`{callee}` over dim 0 of `{self.describe(receiver)}` in forward mixes the samples "
                              "of the batch: reduce over the feature dims instead (or document batch pooling)")


_IN_PLACE = frozenset({"copy_", "lerp_", "add_", "mul_", "sub_"})


def _state_update(node: cst.CSTNode) -> cst.Call | None:
    """`self.center.copy_(...)`, `self.running.lerp_(...)`: an in-place update of the module's own state."""
    if isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute) and node.func.attr.value in _IN_PLACE:
        name = dotted_name(node.func.value)
        if name is not None and name.startswith("self."):
            return node
    return None


def _flatten_receiver(call: cst.BaseExpression, qualname: str | None) -> cst.BaseExpression | None:
    """x for `x.view(-1)`, `x.reshape(-1)`, `x.flatten()`, `torch.flatten(x)`: all dims into one."""
    if not isinstance(call, cst.Call) or type(call.func) is not cst.Attribute:
        return None
    attr = call.func.attr.value
    if qualname == "torch.flatten":
        start, end = get_arg(call, 1, "start_dim"), get_arg(call, 2, "end_dim")
        everything = (start is None or int_value(start) == 0) and (end is None or int_value(end) == -1)
        return get_arg(call, 0, "input") if everything else None
    if qualname == "torch.reshape":
        shape = get_arg(call, 1, "shape")
        ok = isinstance(shape, (cst.Tuple, cst.List)) and len(shape.elements) == 1 and int_value(
            shape.elements[0].value) == -1
        return get_arg(call, 0, "input") if ok else None
    if qualname is not None:
        return None
    if attr == "flatten":
        if any(a.star for a in call.args):
            return None
        start, end = get_arg(call, 0, "start_dim"), get_arg(call, 1, "end_dim")
        everything = (start is None or int_value(start) == 0) and (end is None or int_value(end) == -1)
        return call.func.value if everything else None
    if attr in ("view", "reshape") and len(call.args) == 1 and not call.args[0].keyword:
        shape = call.args[0].value
        if isinstance(shape, (cst.Tuple, cst.List)) and len(shape.elements) == 1:
            shape = shape.elements[0].value
        return call.func.value if int_value(shape) == -1 else None
    return None


class FlattenBatch(ModelScopeRule):
    """`x.view(-1)` / `torch.flatten(x)` in `forward` before a layer: the batch is folded into features.

    Flattening everything, batch included, turns a `(B, C, H, W)` activation into one long vector.
    With a matching layer size it even runs for one batch size, mixing samples into one input.
    Keep the batch dim: `x.flatten(1)` or `x.view(x.size(0), -1)`.
    """

    code = "NNL306"
    name = "flatten-batch"
    severity = Severity.WARNING
    VALID = (
        "from torch import nn\nclass BNTokens(nn.Module):\n    def forward(self, x):\n"
        "        return self.bn(x.flatten(0, 1)).reshape_as(x)\n",
        "from torch import nn\nclass MarginLoss(nn.Module):\n    def forward(self, logits, labels):\n"
        "        labels = labels.flatten()\n        return self.loss(logits, labels)\n",
        "from torch import nn\nclass M(nn.Module):\n    def forward(self, x):\n        x = self.conv(x)\n"
        "        x = x.view(x.size(0), -1)\n        return self.fc(x)\n",
        "from torch import nn\nclass M(nn.Module):\n    def forward(self, x):\n        return self.fc(x.flatten(1))\n",
        "import torch.nn.functional as F\nfrom torch import nn\nclass M(nn.Module):\n"
        "    def forward(self, x, targets):\n        logits = self.head(x)\n"
        "        return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))\n",
        "import torch\ndef f(net, x):\n    return net(torch.flatten(x))\n",
        "from torch import nn\nclass M(nn.Module):\n    def forward(self, x):\n        h = self.conv(x)\n"
        "        return h.view(-1)\n",
    )
    INVALID = (
        "from torch import nn\nclass M(nn.Module):\n    def forward(self, x):\n        x = self.conv(x)\n"
        "        x = x.view(-1)  # <-\n        return self.fc(x)\n",
        "import torch\nfrom torch import nn\nclass M(nn.Module):\n    def forward(self, x):\n"
        "        return self.fc(torch.flatten(self.pool(x)))  # <-\n",
        "from torch import nn\nclass M(nn.Module):\n    def forward(self, x):\n"
        "        return self.fc(x.reshape(-1))  # <-\n",
        "from torch import nn\nclass M(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
        "        self.layers = nn.ModuleList([nn.Linear(4, 4)])\n    def forward(self, x):\n"
        "        h = x.flatten()  # <-\n        for layer in self.layers:\n"
        "            h = layer(h)\n        return h\n",
    )

    def __init__(self, ctx):
        super().__init__(ctx)
        self._pending: dict[str, cst.Call] = {}  # name -> the flatten whose result it holds

    def _flattens_activation(self, expr: cst.BaseExpression) -> bool:
        if not isinstance(expr, cst.Call):
            return False
        receiver = _flatten_receiver(expr, self.ctx.call_name(expr))
        return receiver is not None and bool(self.flags(receiver) & ACTIVATION)

    def _report(self, call: cst.BaseExpression) -> None:
        name = self.describe(_flatten_receiver(call, self.ctx.call_name(call)))
        self.report(call, f"flattening every dim of `{name}` in forward folds the batch into the features fed to "
                          f"a layer: keep dim 0, e.g. `{name}.flatten(1)`")

    def visit_Call(self, node: cst.Call) -> None:
        if not self.in_forward or not self.is_layer_call(node):
            return
        # Losses take flattened targets (`self.loss(logits, labels.flatten())`); so do Loss modules' forwards.
        callee = _callee(node) or ""
        if "loss" in callee.lower() or "criterion" in callee or "Loss" in self.scope.owner.node.name.value:
            return
        for arg in node.args:
            value = arg.value
            if isinstance(value, cst.Name) and value.value in self._pending:
                self._report(self._pending.pop(value.value))
            elif self._flattens_activation(value):
                self._report(value)

    def rebound(self, name: str) -> None:
        self._pending.pop(name, None)

    def leave_Assign(self, node: cst.Assign) -> None:
        flattened = self.in_forward and len(node.targets) == 1 and isinstance(node.targets[0].target, cst.Name) \
            and self._flattens_activation(node.value)
        super().leave_Assign(node)
        if flattened:
            self._pending[cast(cst.Name, node.targets[0].target).value] = cast(cst.Call, node.value)

    def leave_forward(self, scope: FunctionScope) -> None:
        self._pending.clear()


_FACTORIES = frozenset({"zeros", "ones", "empty", "full", "rand", "randn", "randint", "arange", "eye", "tensor",
                        "linspace"})
_SETTLING_METHODS = frozenset({"to", "cuda", "type_as", "item", "tolist"})


class FactoryWithoutDevice(ModelScopeRule):
    """A tensor factory in `forward` without `device=`: the tensor stays on the CPU.

    `torch.zeros(...)`, `torch.arange(...)` or `torch.tensor([...])` inside `forward` create CPU
    tensors. The model works until it is moved to a GPU, then fails with a device mismatch (or
    silently copies every step). Pass `device=x.device`, or use `x.new_zeros(...)` /
    `torch.zeros_like(x)`, or register constant tensors as buffers in `__init__`. A `torch.tensor` of
    sizes (`[inp.shape[-1] for inp in x]`, `len(s)`) is bookkeeping that belongs on the CPU: not reported.
    """

    code = "NNL307"
    name = "factory-without-device"
    severity = Severity.WARNING
    VALID = (
        "import torch\nfrom torch import nn\nclass Top(nn.Module):\n    def forward(self, q, idx):\n"
        "        rows = torch.arange(q.size(0)).unsqueeze(-1)\n        return q[rows, idx]\n",
        "import torch\nfrom torch import nn\nclass Flip(nn.Module):\n    def forward(self, img):\n"
        "        if torch.rand(1) < self.p:\n            return img.flip(-1)\n        return img\n",
        "import torch\nfrom torch import nn\nclass Pool(nn.Module):\n    def forward(self, x, ids):\n"
        "        return x[torch.arange(x.shape[0]), ids.argmax(dim=-1)]\n",
        "import torch\nfrom torch import nn\nclass Q(nn.Module):\n    def forward(self, x):\n"
        "        n = torch.ones(x.shape[0]) * 4\n        n = n.to(x.device)\n        return x * n[:, None]\n",
        "import torch\nfrom torch import nn\nclass M(nn.Module):\n    def forward(self, x):\n"
        "        return x + torch.zeros(x.size(0), 4, device=x.device)\n",
        "import torch\nfrom torch import nn\nclass M(nn.Module):\n    def forward(self, x):\n"
        "        return x + torch.zeros_like(x) + x.new_zeros(3)\n",
        "import torch\nfrom torch import nn\nclass M(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
        "        self.register_buffer('pos', torch.arange(16))\n",
        "import torch\nfrom torch import nn\nclass M(nn.Module):\n    def forward(self, x):\n"
        "        pos = torch.arange(x.size(1))\n        pos = pos.to(x.device)\n        return x + pos\n",
        "import torch\nfrom torch import nn\nclass M(nn.Module):\n    def forward(self, x):\n"
        "        return x * torch.tensor(0.5) + torch.ones(4).to(x)\n",
        "import torch\ndef make(n):\n    return torch.zeros(n)\n",
        # DINO's multi-crop wrapper: crop sizes counted on the CPU to slice the list of crops
        "import torch\nfrom torch import nn\nclass MultiCrop(nn.Module):\n    def forward(self, x):\n"
        "        idx = torch.cumsum(torch.unique_consecutive(torch.tensor([inp.shape[-1] for inp in x]),\n"
        "                           return_counts=True)[1], 0)\n"
        "        return [self.backbone(torch.cat(x[a:b])) for a, b in idx]\n",
        "import torch\nfrom torch import nn\nclass Enc(nn.Module):\n    def forward(self, seqs):\n"
        "        lengths = torch.tensor([len(s) for s in seqs])\n        return pack(self.pad(seqs), lengths)\n",
    )
    INVALID = (
        "import torch\nfrom torch import nn\nclass M(nn.Module):\n    def forward(self, x):\n"
        "        mask = torch.ones(x.size(0), x.size(1))  # <-\n        return x * mask\n",
        "import torch\nfrom torch import nn\nclass M(nn.Module):\n    def forward(self, x):\n"
        "        return x + torch.arange(x.size(-1))  # <-\n",
        "from torch import nn, tensor\nclass M(nn.Module):\n    def forward(self, x):\n"
        "        return x * tensor([1.0, 2.0])  # <-\n",
        # values, not sizes: data that multiplies the input
        "import torch\nfrom torch import nn\nclass M(nn.Module):\n    def forward(self, x):\n"
        "        w = torch.tensor([self.scale[k] for k in self.keys])  # <-\n        return x * w\n",
    )

    def __init__(self, ctx):
        super().__init__(ctx)
        self._moved: set[int] = set()
        self._assigned: set[int] = set()
        self._pending: dict[str, cst.Call] = {}  # name -> factory call, unless moved later

    def _lacks_device(self, call: cst.Call) -> bool:
        callee = _callee(call)
        if callee not in _FACTORIES or id(call) in self._moved or self.ctx.call_name(call) != f"torch.{callee}":
            return False
        if has_arg(call, None, "device"):
            return False
        if callee == "tensor":
            # A 0-dim CPU tensor mixes with GPU tensors; only data tensors break.
            data = get_arg(call, 0, "data")
            return isinstance(data, (cst.List, cst.Tuple, cst.ListComp)) and not _of_sizes(data)
        return not _is_scalar_size(call, callee)

    def _report(self, call: cst.Call, scope: FunctionScope, name: str | None = None) -> None:
        assert scope.node is not None  # called inside forward
        params = scope.node.params.params
        example = f"{params[1].name.value}.device" if len(params) > 1 else "x.device"
        what = f"`{name}` = `torch.{_callee(call)}(...)`" if name else f"`torch.{_callee(call)}(...)`"
        self.report(call, f"{what} in forward creates a CPU tensor: pass `device={example}` "
                          "or register it as a buffer")

    def _settle(self, expr: cst.BaseExpression) -> None:
        """`expr` ends up off the CPU or as a Python value: forget the factories it is made of."""
        while isinstance(expr, cst.Call) and isinstance(expr.func, cst.Attribute):
            self._moved.add(id(expr))  # pre-order: the outer call is seen before the factory inside
            expr = expr.func.value
        if isinstance(expr, cst.Call):
            self._moved.add(id(expr))
        elif isinstance(expr, cst.Name):
            self._pending.pop(expr.value, None)

    def visit_Assign(self, node: cst.Assign) -> None:
        if self.in_forward:
            self._assigned.update(map(id, _operands(node.value)))

    def visit_Subscript(self, node: cst.Subscript) -> None:
        # A CPU index tensor may index a GPU tensor.
        if self.in_forward:
            for element in node.slice:
                if isinstance(element.slice, cst.Index):
                    self._settle(element.slice.value)

    def visit_Call(self, node: cst.Call) -> None:
        if not self.in_forward:
            return
        func = node.func
        if type(func) is cst.Attribute and func.attr.value in _SETTLING_METHODS:
            self._settle(func.value)
        elif type(func) is cst.Name and func.value in ("int", "float", "bool") and node.args:
            self._settle(node.args[0].value)
        elif id(node) not in self._assigned and self._lacks_device(node):
            self._report(node, self.scope)

    def leave_Assign(self, node: cst.Assign) -> None:
        super().leave_Assign(node)
        if not self.in_forward:
            return
        target = node.targets[0].target
        if isinstance(target, cst.Subscript):  # `buffer[:n] = made[:n]` copies onto buffer's device
            for name in walk(node.value):
                if isinstance(name, cst.Name):
                    self._pending.pop(name.value, None)
        for call in _operands(node.value):
            if self._lacks_device(call):
                if len(node.targets) == 1 and isinstance(target, cst.Name):
                    self._pending.setdefault(target.value, call)
                else:
                    self._report(call, self.scope)

    def leave_forward(self, scope: FunctionScope) -> None:
        for name, call in self._pending.items():
            self._report(call, scope, name)
        self._pending.clear()


def _of_sizes(data: cst.List | cst.Tuple | cst.ListComp) -> bool:
    """`[inp.shape[-1] for inp in x]`, `[len(s) for s in seqs]`: sizes counted on the CPU for bookkeeping
    (crop boundaries, sequence lengths that `pack_padded_sequence` wants on the CPU anyway)."""
    elements = [data.elt] if isinstance(data, cst.ListComp) else [e.value for e in data.elements]
    return bool(elements) and all(_is_size(e) for e in elements)


def _is_size(expr: cst.BaseExpression) -> bool:
    if isinstance(expr, cst.Subscript):
        expr = expr.value
    if isinstance(expr, cst.Attribute):
        return expr.attr.value == "shape"
    if isinstance(expr, cst.Call):
        return (isinstance(expr.func, cst.Name) and expr.func.value == "len") or \
            (isinstance(expr.func, cst.Attribute) and expr.func.attr.value in ("size", "numel", "dim"))
    return False


def _operands(expr: cst.BaseExpression) -> list[cst.Call]:
    """The calls an expression is built from: `torch.ones(n) * k`, `torch.arange(n).unsqueeze(-1)`."""
    if isinstance(expr, cst.BinaryOperation):
        return _operands(expr.left) + _operands(expr.right)
    if not isinstance(expr, cst.Call):
        return []
    if isinstance(expr.func, cst.Attribute) and isinstance(expr.func.value, cst.Call):
        return [expr, *_operands(expr.func.value)]
    return [expr]


def _is_scalar_size(call: cst.Call, callee: str) -> bool:
    """`torch.rand(1)`, `torch.rand([])`, `torch.randint(2, (1,))`: a one-element draw used as a number."""
    if callee in ("arange", "eye", "linspace"):
        return False
    size = get_arg(call, None, "size")
    positional = positional_args(call)
    if size is None and positional:
        if callee == "randint":
            size = positional[-1].value
        elif callee == "full":
            size = positional[0].value
        elif len(positional) == 1:
            size = positional[0].value
    if isinstance(size, (cst.Tuple, cst.List)):
        return all(int_value(e.value) == 1 for e in size.elements)
    return size is not None and int_value(size) == 1
