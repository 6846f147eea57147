"""What the shape rules need to know about where a tensor comes from, tracked during the one walk.

`ModelScopeRule` follows the scopes the walk enters: which classes are `nn.Module`s (directly or
through a base class defined earlier in the file), whether the current function is such a class's
`forward`, and, inside it, a flag per local name saying what the value derives from: the forward's
inputs (`INPUT`), a layer's output (`LAYER`). Outside `forward` it only marks what a model call
returns (`MODEL`). Assignments update the flags in source order; loops are not iterated again, so
a value that becomes an activation only on a later iteration is missed (precision over recall).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import libcst as cst

from nnlint.imports import dotted_name
from nnlint.rule import StaticRule
from nnlint.static.facts.classes import ClassScope, ModuleClasses
from nnlint.tree import children

INPUT = 1  # derives from the forward's parameters
LAYER = 2  # derives from a submodule's output
MODEL = 4  # a whole model's output (outside forward)
ACTIVATION = INPUT | LAYER

# nn.Module's own methods: `self.register_buffer(...)` and friends are not layer calls.
_MODULE_METHODS = frozenset(
    {
        "register_buffer", "register_parameter", "register_module", "add_module", "apply", "parameters",
        "named_parameters", "modules", "named_modules", "children", "named_children", "buffers",
        "named_buffers", "state_dict", "load_state_dict", "to", "cuda", "cpu", "train", "eval", "forward",
        "get_submodule", "get_parameter", "get_buffer", "type", "float", "half", "double", "bfloat16",
        "zero_grad", "requires_grad_", "extra_repr", "log", "log_dict", "print", "save_hyperparameters",
    }
)
# Attributes and methods that give metadata, not the tensor's values: `x.shape[0]` is not an activation.
_META_ATTRS = frozenset({"shape", "device", "dtype", "ndim", "is_cuda", "requires_grad", "layout", "training"})
_META_METHODS = frozenset(
    {"size", "dim", "numel", "ndimension", "get_device", "item", "tolist", "data_ptr", "stride", "element_size"}
)
# Calls whose result is a new tensor (or a non-tensor): their arguments' flags do not carry over.
# torch.stack / torch.tensor build a new leading dim, which is not the batch.
_FRESH = frozenset(
    {
        "torch.stack", "torch.tensor", "torch.as_tensor", "torch.from_numpy", "torch.zeros", "torch.ones",
        "torch.empty", "torch.full", "torch.arange", "torch.eye", "torch.rand", "torch.randn",
        "torch.randint", "torch.linspace", "torch.zeros_like", "torch.ones_like", "torch.empty_like",
        "torch.full_like", "torch.rand_like", "torch.randn_like", "torch.randint_like",
    }
)
_FRESH_BUILTINS = frozenset({"len", "isinstance", "range", "int", "float", "bool", "str", "hasattr", "getattr", "type"})


REDUCTIONS = frozenset({"sum", "mean", "max", "min", "prod", "std", "var", "amax", "amin", "logsumexp",
                        "median", "argmax", "argmin", "nansum", "nanmean"})
_BATCH_NAMES = frozenset({"b", "bs", "bsz", "n", "batch", "batch_size", "batchsize", "nbatches", "num_batches"})


def _arg(call: cst.Call, position: int, keyword: str) -> cst.BaseExpression | None:
    for arg in call.args:
        if arg.keyword is not None and arg.keyword.value == keyword:
            return arg.value
    positional = [a for a in call.args if a.keyword is None and not a.star]
    return positional[position].value if position < len(positional) else None


def _is_batch_size(expr: cst.BaseExpression) -> bool:
    """`x.size(0)`, `x.shape[0]`, `B`, `batch_size`: the first argument of a view that keeps the batch."""
    if isinstance(expr, cst.Name):
        return expr.value.lower() in _BATCH_NAMES
    if isinstance(expr, cst.Call) and isinstance(expr.func, cst.Attribute) and expr.func.attr.value == "size":
        return len(expr.args) == 1 and int_value(expr.args[0].value) == 0
    if isinstance(expr, cst.Subscript) and isinstance(expr.value, cst.Attribute) and expr.value.attr.value == "shape":
        index = expr.slice[0].slice
        return isinstance(index, cst.Index) and int_value(index.value) == 0
    return False


def int_value(expr: cst.BaseExpression | None) -> int | None:
    """The value of an integer literal such as `2` or `-1`, else None."""
    if isinstance(expr, cst.Integer):
        return int(expr.value) if expr.value.isdigit() else None
    if isinstance(expr, cst.UnaryOperation) and isinstance(expr.operator, cst.Minus):
        inner = int_value(expr.expression)
        return None if inner is None else -inner
    return None


def mentions_dim_zero(expr: cst.BaseExpression | None) -> bool:
    """`0`, or a tuple/list of dims that includes 0."""
    if isinstance(expr, (cst.Tuple, cst.List)):
        return any(int_value(e.value) == 0 for e in expr.elements)
    return int_value(expr) == 0


def target_names(target: cst.BaseExpression) -> list[str]:
    """Names an assignment target binds: `x`, `a, (b, *c)`."""
    if isinstance(target, cst.Name):
        return [target.value]
    if isinstance(target, (cst.Tuple, cst.List)):
        return [n for e in target.elements for n in target_names(e.value)]
    if isinstance(target, cst.StarredElement):
        return target_names(target.value)
    return []


def assigned_pairs(node: cst.CSTNode) -> list[tuple[cst.BaseExpression, cst.BaseExpression | None]]:
    """(target, value) of an Assign / AnnAssign / AugAssign."""
    if isinstance(node, cst.Assign):
        return [(t.target, node.value) for t in node.targets]
    if isinstance(node, (cst.AnnAssign, cst.AugAssign)):
        return [(node.target, node.value)]
    return []


def _is_model_name(expr: cst.BaseExpression) -> bool:
    """`model(x)`, `self.net(x)`, `teacher_model(x)`: a callee named like a whole model."""
    name = dotted_name(expr)
    if name is None:
        return False
    last = name.rsplit(".", 1)[-1].lower()
    return last in ("model", "net", "network") or last.endswith("_model") or last.endswith("_net")


@dataclass
class FunctionScope:
    node: cst.FunctionDef | None  # None for the module level
    owner: ClassScope | None  # the module class when this is its forward
    flags: dict[str, int] = field(default_factory=dict)
    layer_names: set[str] = field(default_factory=set)  # loop variables over `self.<modules>`

    @property
    def is_forward(self) -> bool:
        return self.owner is not None


class ModelScopeRule(StaticRule):
    """Base of the shape rules that need to know whether they are in a model's `forward`.

    Subclasses extending a `visit_`/`leave_` method defined here must call super().
    """

    TRACK_MODEL_OUTPUTS = False  # also follow `out = model(x)` outside forward (costs a little)

    uses = (ModuleClasses,)

    def __init__(self, ctx):
        super().__init__(ctx)
        self._module_classes = ctx.facts(ModuleClasses)
        self._classes: list[ClassScope] = []
        self.scope = FunctionScope(None, None)
        self._functions: list[FunctionScope] = [self.scope]

    # scopes
    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        self._classes.append(self._module_classes.by_node[node])

    def leave_ClassDef(self, node: cst.ClassDef) -> None:
        self._classes.pop()

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        owner = None
        # A forward directly in the body of a module class (not one nested in another function).
        if node.name.value == "forward" and self._classes and self._classes[-1].is_module:
            cls = self._classes[-1]
            if any(s is node for s in cls.node.body.body):
                owner = cls
        scope = FunctionScope(node, owner)
        if owner is not None:
            self._seed_inputs(node, scope)
        self._functions.append(scope)
        self.scope = scope

    def leave_FunctionDef(self, node: cst.FunctionDef) -> None:
        scope = self._functions.pop()
        self.scope = self._functions[-1]
        if scope.is_forward:
            self.leave_forward(scope)

    def leave_forward(self, scope: FunctionScope) -> None:
        """Called when the walk leaves a model's forward; rules with deferred findings override it."""

    @staticmethod
    def _seed_inputs(node: cst.FunctionDef, scope: FunctionScope) -> None:
        params = node.params
        positional = [*params.posonly_params, *params.params]
        for param in positional[1:] + list(params.kwonly_params):  # [0] is self
            default = param.default
            # `scale=1.0`, `return_attn=False`: configuration, not tensors.
            if default is not None and not (isinstance(default, cst.Name) and default.value == "None"):
                continue
            scope.flags[param.name.value] = INPUT
        for star in (params.star_arg, params.star_kwarg):
            if isinstance(star, cst.Param):
                scope.flags[star.name.value] = INPUT

    def describe(self, expr: cst.CSTNode | None) -> str:
        """Short source text of `expr`, for messages (only computed when reporting)."""
        if expr is None:
            return "?"
        text = " ".join(self.ctx.module.code_for_node(expr).split())
        return text if len(text) <= 40 else text[:37] + "..."

    @property
    def in_forward(self) -> bool:
        return self.scope.is_forward

    @property
    def model_class(self) -> ClassScope | None:
        """The innermost enclosing class when it is an nn.Module."""
        if self._classes and self._classes[-1].is_module:
            return self._classes[-1]
        return None

    # data flow
    def is_layer_call(self, call: cst.Call) -> bool:
        """`self.fc(x)`, `self.blocks[i](x)`, or `block(x)` for `block` looping over `self.blocks`."""
        func = call.func
        if isinstance(func, cst.Subscript):
            func = func.value
        if isinstance(func, cst.Attribute):
            if not (isinstance(func.value, cst.Name) and func.value.value == "self"):
                return False
            attr = func.attr.value
            owner = self.scope.owner
            return attr not in _MODULE_METHODS and (owner is None or attr not in owner.methods)
        return isinstance(func, cst.Name) and func.value in self.scope.layer_names

    def flags(self, expr: cst.BaseExpression | None) -> int:
        """What the value of `expr` derives from, as INPUT / LAYER / MODEL bits, with dim 0 still the batch."""
        return 0 if expr is None else self._eval(expr)

    def _eval(self, node: Any) -> int:  # dispatched on type(node), which mypy cannot narrow
        kind = type(node)
        if kind is cst.Name:
            return self.scope.flags.get(node.value, 0)
        if kind is cst.Attribute:
            return 0 if node.attr.value in _META_ATTRS else self._eval(node.value)
        if kind is cst.Call:
            return self._eval_call(node)
        if kind in (cst.Integer, cst.Float, cst.SimpleString, cst.FormattedString, cst.ConcatenatedString):
            return 0
        if kind is cst.Arg:
            return self._eval(node.value)
        result = 0
        for child in children(node):
            result |= self._eval(child)
        return result

    def _eval_args(self, call: cst.Call) -> int:
        result = 0
        for arg in call.args:
            result |= self._eval(arg.value)
        return result

    def _eval_call(self, call: cst.Call) -> int:
        func = call.func
        if type(func) is cst.Name and func.value in _FRESH_BUILTINS:
            return 0
        if type(func) is cst.Attribute and func.attr.value in _META_METHODS:
            return 0
        qualname = self.ctx.call_name(call)
        if qualname is not None:  # an imported function: its result follows its arguments
            if qualname in _FRESH:
                return 0
            if qualname.startswith("torch.") and qualname.rsplit(".", 1)[1] in REDUCTIONS and mentions_dim_zero(
                    _arg(call, 1, "dim")):
                return 0
            return self._eval_args(call)
        if self.scope.is_forward and self.is_layer_call(call):
            return self._eval_args(call) | LAYER
        if self.TRACK_MODEL_OUTPUTS and _is_model_name(func):
            return MODEL
        if type(func) is cst.Attribute and not (isinstance(func.value, cst.Name) and func.value.value == "self"):
            # A method on a value: the result has the receiver's layout, whatever the arguments.
            base = self._eval(func.value)
            return base and self._after_method(base, func.attr.value, call)
        return self._eval_args(call)

    @staticmethod
    def _after_method(base: int, method: str, call: cst.Call) -> int:
        """`base` if dim 0 of `x.<method>(...)` is still x's dim 0, else 0 (a reshuffled layout loses the flags)."""
        if method in REDUCTIONS:
            dim = _arg(call, 0, "dim")  # no dim: a full reduction, no batch left
            return 0 if dim is None or mentions_dim_zero(dim) else base
        if method in ("view", "reshape"):
            first = _arg(call, 0, "shape")
            if isinstance(first, (cst.Tuple, cst.List)):
                first = first.elements[0].value if first.elements else None
            return base if first is not None and _is_batch_size(first) else 0
        if method in ("transpose", "swapaxes", "swapdims", "movedim"):
            dims = [int_value(_arg(call, 0, "dim0")), int_value(_arg(call, 1, "dim1"))]
            return base if all(d is not None and d != 0 for d in dims) else 0
        if method == "permute":
            return base if int_value(_arg(call, 0, "dims")) == 0 else 0
        if method in ("flatten", "unsqueeze", "unflatten", "unbind"):
            position = int_value(_arg(call, 0, "dim"))
            return base if position is not None and position != 0 else 0
        if method in ("t", "repeat", "repeat_interleave", "split_with_sizes"):
            return 0
        return base

    def _bind(self, node: cst.CSTNode) -> None:
        scope = self.scope
        if not scope.is_forward and not self.TRACK_MODEL_OUTPUTS:
            return
        for target, value in assigned_pairs(node):
            names = target_names(target)
            if not names:
                continue
            if not scope.is_forward:
                # Outside forward only direct model calls are followed: cheap, and enough for `out = model(x)`.
                value_flags = MODEL if isinstance(value, cst.Call) and _is_model_name(value.func) else 0
            else:
                value_flags = self.flags(value)
            if isinstance(node, cst.AugAssign):
                value_flags |= scope.flags.get(names[0], 0)
            for name in names:
                if value_flags:
                    scope.flags[name] = value_flags
                else:
                    scope.flags.pop(name, None)
                self.rebound(name)

    def rebound(self, name: str) -> None:
        """Hook: `name` was just assigned a new value."""

    def leave_Assign(self, node: cst.Assign) -> None:
        self._bind(node)

    def leave_AnnAssign(self, node: cst.AnnAssign) -> None:
        if node.value is not None:
            self._bind(node)

    def leave_AugAssign(self, node: cst.AugAssign) -> None:
        self._bind(node)

    def visit_For(self, node: cst.For) -> None:
        scope = self.scope
        if not scope.is_forward:
            return
        iterable = node.iter
        if isinstance(iterable, cst.Call) and iterable.args and dotted_name(iterable.func) in ("enumerate", "reversed"):
            iterable = iterable.args[0].value
        if isinstance(iterable, cst.Call) and isinstance(iterable.func, cst.Attribute) and (
                iterable.func.attr.value == "values"):
            iterable = iterable.func.value
        name = dotted_name(iterable)
        names = target_names(node.target)
        # Iterating a tensor yields slices along dim 0; iterating a list of tensors does not: unclear, so forget.
        for bound in names:
            scope.flags.pop(bound, None)
            self.rebound(bound)
        if name is not None and name.startswith("self.") and names:
            scope.layer_names.add(names[-1])
