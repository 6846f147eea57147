"""Simple intra-function data flow for the loss rules: what kind of tensor each name holds.

A small abstract interpreter runs over a file's statements in order. It knows four tensor kinds:
softmax probabilities, log-probabilities, sigmoid probabilities and raw logits (a linear/conv
layer's output), and follows them through assignments, layers and same-file models
(`self.fc = nn.Linear(...)`, `nn.Sequential(..., nn.Softmax(dim=1))`, a class whose `forward`
returns softmax). Branches merge by keeping only what every path agrees on, and anything it
does not understand becomes unknown: the rules built on it report only what is certain.

The analysis runs once per file, only for files that use a loss the rules care about, and is
shared by the rules through the file context.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import libcst as cst

from nnlint.imports import dotted_name
from nnlint.static.calls import get_arg
from nnlint.static.project import ClassSummary, ModuleSummary
from nnlint.tree import walk, walk_no_defs

if TYPE_CHECKING:
    from nnlint.static.facts.lossflow import LossFlowFacts

# Tensor kinds.
SOFTMAX = "softmax"
LOGPROB = "logprob"
SIGMOID = "sigmoid"
LOGITS = "logits"

KIND_TEXT = {
    SOFTMAX: "softmax probabilities",
    LOGPROB: "log_softmax output",
    SIGMOID: "sigmoid probabilities",
    LOGITS: "raw logits",
}

_TENSOR_FUNCTIONS = {
    "torch.softmax": SOFTMAX, "torch.special.softmax": SOFTMAX, "torch.nn.functional.softmax": SOFTMAX,
    "torch.Tensor.softmax": SOFTMAX, "torch.nn.functional.softmin": SOFTMAX,
    "torch.log_softmax": LOGPROB, "torch.special.log_softmax": LOGPROB,
    "torch.nn.functional.log_softmax": LOGPROB, "torch.Tensor.log_softmax": LOGPROB,
    "torch.sigmoid": SIGMOID, "torch.nn.functional.sigmoid": SIGMOID, "torch.special.expit": SIGMOID,
    "torch.Tensor.sigmoid": SIGMOID,
}
# Tensor methods that produce a kind whatever the receiver.
_TENSOR_METHODS = {"softmax": SOFTMAX, "log_softmax": LOGPROB, "sigmoid": SIGMOID}

_LAYERS = {
    "torch.nn.Softmax": SOFTMAX, "torch.nn.Softmin": SOFTMAX, "torch.nn.LogSoftmax": LOGPROB,
    "torch.nn.Sigmoid": SIGMOID, "torch.nn.Linear": LOGITS, "torch.nn.LazyLinear": LOGITS,
    "torch.nn.Bilinear": LOGITS, "torch.nn.Conv1d": LOGITS, "torch.nn.Conv2d": LOGITS,
    "torch.nn.Conv3d": LOGITS, "torch.nn.LazyConv1d": LOGITS, "torch.nn.LazyConv2d": LOGITS,
    "torch.nn.LazyConv3d": LOGITS,
}

# Layers that act differently in train and eval mode.
_EVAL_SENSITIVE = frozenset(
    {f"torch.nn.{name}" for name in (
        "Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout", "FeatureAlphaDropout", "SyncBatchNorm",
        "RReLU")}
    | {f"torch.nn.functional.{name}" for name in (
        "dropout", "dropout1d", "dropout2d", "dropout3d", "alpha_dropout", "feature_alpha_dropout", "batch_norm",
        "rrelu")}
)
_EVAL_SENSITIVE_PREFIXES = ("torch.nn.BatchNorm", "torch.nn.LazyBatchNorm")
# Layers with a `dropout` argument, and those where it defaults to 0.
_DROPOUT_ARG_LAYERS = frozenset(
    {f"torch.nn.{name}" for name in (
        "RNN", "LSTM", "GRU", "MultiheadAttention", "Transformer", "TransformerEncoderLayer",
        "TransformerDecoderLayer")}
)
_DROPOUT_DEFAULT_ZERO = frozenset({"torch.nn.RNN", "torch.nn.LSTM", "torch.nn.GRU", "torch.nn.MultiheadAttention"})
_MODEL_ZOOS = ("torchvision.models", "timm", "transformers", "torch.hub")
_BUILTINS = frozenset(dir(__import__("builtins")))

# Loss families, by class and by function.
CROSS_ENTROPY = "cross_entropy"
NLL = "nll"
BCE = "bce"
_LOSS_CLASSES = {
    "torch.nn.CrossEntropyLoss": CROSS_ENTROPY, "torch.nn.NLLLoss": NLL, "torch.nn.BCELoss": BCE,
}
_LOSS_FUNCTIONS = {
    "torch.nn.functional.cross_entropy": CROSS_ENTROPY, "torch.nn.functional.nll_loss": NLL,
    "torch.nn.functional.binary_cross_entropy": BCE,
}
# Final name parts that make a file worth analysing (cheap test during the walk).
TRIGGER_NAMES = {
    CROSS_ENTROPY: frozenset({"CrossEntropyLoss", "cross_entropy"}),
    NLL: frozenset({"NLLLoss", "nll_loss"}),
    BCE: frozenset({"BCELoss", "binary_cross_entropy"}),
}

# Methods that keep a tensor's kind (reshaping, moving, casting), or a module's.
_KIND_KEEPING_METHODS = frozenset(
    {
        "view", "reshape", "contiguous", "float", "double", "half", "bfloat16", "squeeze", "unsqueeze",
        "permute", "transpose", "flatten", "to", "cuda", "cpu", "clone", "view_as", "reshape_as", "t",
    }
)
_LOG_FUNCTIONS = frozenset({"torch.log", "torch.Tensor.log"})


@dataclass(frozen=True)
class Tensor:
    kind: str
    origin: str  # where it comes from, for messages


@dataclass(frozen=True)
class Module:
    """A callable layer or model whose output has a known kind."""

    kind: str
    origin: str


@dataclass(frozen=True)
class Loss:
    family: str
    origin: str


@dataclass(frozen=True)
class ClassRef:
    node: cst.ClassDef


@dataclass(frozen=True)
class Instance:
    node: cst.ClassDef
    via_self: bool  # `self` inside the class: a same-file subclass may be the real type


@dataclass(frozen=True)
class FunctionRef:
    """A function of this file; calling it gives what it returns for those arguments."""

    node: cst.FunctionDef


@dataclass(frozen=True)
class BoundMethod:
    """`self.decode` of a same-file model: calling it runs the method with `self` bound."""

    node: cst.FunctionDef
    owner: Instance


@dataclass(frozen=True)
class Pack:
    """A tuple whose items (None where unknown) are followed one by one: `return logits, hidden`."""

    items: tuple


@dataclass(frozen=True)
class Models:
    """One of several model instances (branches built different models)."""

    options: frozenset


@dataclass(frozen=True)
class ForeignClass:
    """A model class imported from another checked file, known by its summary."""

    summary: ClassSummary


@dataclass(frozen=True)
class ForeignInstance:
    summary: ClassSummary


@dataclass(frozen=True)
class ForeignModule:
    summary: ModuleSummary


@dataclass(frozen=True)
class Alternatives:
    """What one of several models returns, when they differ: unknown, unless unpacking picks one."""

    options: frozenset


_MODEL_VALUES = (Instance, ForeignInstance, Models)


@dataclass(frozen=True)
class Finding:
    family: str  # the loss family: which rule it belongs to
    kind: str  # the kind of tensor given to it
    call: cst.Call
    message: str


def _suite_statements(suite) -> list:
    if isinstance(suite, (cst.IndentedBlock, cst.Module)):
        return list(suite.body)
    if isinstance(suite, cst.SimpleStatementSuite):
        return [suite]
    return []


def _child_statements(statement: cst.CSTNode) -> list:
    """The statements directly nested in a compound statement."""
    found = []
    for attr in ("body", "orelse", "finalbody"):
        part = getattr(statement, attr, None)
        if isinstance(part, cst.BaseSuite):
            found += _suite_statements(part)
        elif isinstance(part, (cst.Else, cst.Finally)):
            found += _suite_statements(part.body)
        elif isinstance(part, cst.If):
            found.append(part)
    for handler in getattr(statement, "handlers", ()):
        found += _suite_statements(handler.body)
    return found


def _sets_attribute_of(target: cst.BaseExpression, part: cst.Attribute) -> bool:
    """Whether the target only sets an attribute of `part` (`self.decoder.weight = ...`: weight tying)."""
    while isinstance(target, cst.Attribute):
        if target.value is part:
            return True
        target = target.value
    return False


def _is_main_guard(test: cst.BaseExpression) -> bool:
    """`__name__ == "__main__"`."""
    return (isinstance(test, cst.Comparison) and isinstance(test.left, cst.Name) and test.left.value == "__name__"
            and len(test.comparisons) == 1 and isinstance(test.comparisons[0].operator, cst.Equal)
            and isinstance(test.comparisons[0].comparator, cst.SimpleString)
            and test.comparisons[0].comparator.evaluated_value == "__main__")


def _names_in(target: cst.CSTNode) -> set[str]:
    return {n.value for n in walk_no_defs(target) if type(n) is cst.Name}


# What can bind a name; checked by exact type first (libcst's node classes are final, and isinstance()
# on them goes through the slow ABC machinery for every node of the walk).
_BINDERS = frozenset({cst.AssignTarget, cst.AnnAssign, cst.AugAssign, cst.For, cst.CompFor, cst.NamedExpr,
                      cst.AsName, cst.ImportAlias, cst.FunctionDef, cst.ClassDef, cst.Global, cst.Nonlocal})


def _assigned_in(statement: cst.CSTNode) -> frozenset[str]:
    names: set[str] = set()
    for node in walk_no_defs(statement):
        if type(node) not in _BINDERS:
            continue
        if isinstance(node, (cst.AssignTarget, cst.AnnAssign, cst.AugAssign, cst.For, cst.CompFor, cst.NamedExpr)):
            names |= _names_in(node.target)
        elif isinstance(node, cst.AsName):
            names |= _names_in(node.name)
        elif isinstance(node, cst.ImportAlias):
            names.add((dotted_name(node.name) or "").split(".", 1)[0])
        elif isinstance(node, (cst.FunctionDef, cst.ClassDef)):
            names.add(node.name.value)
        elif isinstance(node, (cst.Global, cst.Nonlocal)):
            names |= {item.name.value for item in node.names}
    return frozenset(names)


def _model_options(value) -> frozenset:
    if isinstance(value, Models):
        return value.options
    if isinstance(value, Instance) and value.via_self:
        return frozenset()  # `self` may be a subclass: not one known model
    return frozenset({value}) if isinstance(value, _MODEL_VALUES) else frozenset()


def _merge_value(values: list):
    first = values[0]
    if all(v is not None and v == first for v in values[1:]):
        return first
    if all(isinstance(v, Tensor) and v.kind == first.kind for v in values):
        return first  # the same kind from different places
    options = [_model_options(v) for v in values]
    if all(options):
        return Models(frozenset().union(*options))
    return None


def _merge(*envs: dict) -> dict:
    first, rest = envs[0], envs[1:]
    merged = {}
    for key, value in first.items():
        if all(e.get(key) == value for e in rest):
            merged[key] = value
        elif all(key in e for e in rest):
            value = _merge_value([value] + [e[key] for e in rest])
            if value is not None:
                merged[key] = value
    return merged


def _param_names(params: cst.Parameters) -> list[cst.Param]:
    found = [*params.posonly_params, *params.params, *params.kwonly_params]
    for extra in (params.star_arg, params.star_kwarg):
        if isinstance(extra, cst.Param):
            found.append(extra)
    return found


def _is_plain_method(function: cst.FunctionDef) -> bool:
    for decorator in function.decorators:
        name = dotted_name(decorator.decorator) or ""
        if name.rsplit(".", 1)[-1] in ("staticmethod", "classmethod"):
            return False
    return True


def _short(module: cst.Module, node: cst.CSTNode, limit: int = 40) -> str:
    text = " ".join(module.code_for_node(node).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


class FlowAnalysis:
    """Interprets one file; `findings` lists every loss call fed a tensor of a known kind."""

    def __init__(self, ctx, walked: LossFlowFacts):
        self.ctx = ctx
        self.module = ctx.module
        self.walked = walked
        self._findings: dict[int, Finding] | None = None
        self.found: dict[int, Finding] = {}
        self._classes: dict[str, cst.ClassDef | None] = {}
        self._subclassed: set[str] = set()
        self._attrs_cache: dict[int, dict] = {}
        self._forward_cache: dict[int, Tensor | Pack | None] = {}
        self._sensitive_cache: dict[int, bool | None] = {}
        self._in_progress: set[int] = set()
        self._assigned: dict[int, frozenset[str]] = {}  # id of a statement -> names it may rebind
        # Every function of the file: id -> (node, its class if a method, the scope it is defined in).
        self._scopes: dict[int, tuple[cst.FunctionDef, cst.ClassDef | None, cst.CSTNode]] = {}
        self._scope_nodes: dict[int, cst.CSTNode] = {id(self.module): self.module}
        self._done: dict[int, dict] = {}  # scope id -> its final environment
        self._active: set[int] = set()
        self._def_env: dict[int, dict] = {}  # function id -> the environment where it is defined
        self._site_args: dict[int, tuple[int, dict]] = {}  # call id -> (function id, parameter values)
        self._callees: dict[int, object] = {}  # call id -> the value called, for calls rules ask about
        self._site_env: dict[int, tuple[int, dict]] = {}  # call id -> (function id, environment at the call)
        self._returns_cache: dict[tuple, object] = {}
        self._collect_structure(self.module.body, None, self.module)
        self._reassigned_attrs = walked.reassigned_attrs

    @property
    def findings(self) -> dict[int, Finding]:
        """Every loss call fed a tensor of a known kind, interpreting each function that computes a loss."""
        if self._findings is None:
            self._interpret(self.module)
            for node, _, _ in list(self._scopes.values()):
                if self.walked.is_relevant(node):
                    self._interpret(node)
            self._findings = self.found
        return self._findings

    def callee_value(self, call: cst.Call):
        """The value a call in this file invokes (a model instance, a layer...), or None when unknown."""
        scope = self.walked.scope_of_call.get(id(call))
        node = self._scope_nodes.get(scope) if scope is not None else None
        if node is None:
            return None
        self._interpret(node)
        return self._callees.get(id(call))

    # ---- file structure ----

    def _collect_structure(self, statements, cls: cst.ClassDef | None, scope: cst.CSTNode) -> None:
        # Only the statement skeleton is visited here, never expressions: it is cheap.
        stack = [(statement, cls, scope) for statement in statements]
        while stack:
            statement, owner, parent = stack.pop()
            if isinstance(statement, cst.ClassDef):
                name = statement.name.value
                self._classes[name] = None if name in self._classes else statement
                for base in statement.bases:
                    base_name = dotted_name(base.value)
                    if base_name:
                        self._subclassed.add(base_name.rsplit(".", 1)[-1])
                stack.extend((child, statement, parent) for child in _child_statements(statement))
            elif isinstance(statement, cst.FunctionDef):
                self._scopes[id(statement)] = (statement, owner, parent)
                self._scope_nodes[id(statement)] = statement
                stack.extend((child, None, statement) for child in _child_statements(statement))
            else:
                stack.extend((child, owner, parent) for child in _child_statements(statement))

    def _base_classes(self, node: cst.ClassDef) -> list[cst.ClassDef]:
        found = []
        for base in node.bases:
            name = dotted_name(base.value)
            target = self._classes.get(name) if name else None
            if target is not None and target is not node:
                found.append(target)
        return found

    def _method(self, node: cst.ClassDef, name: str) -> cst.FunctionDef | None:
        for statement in _suite_statements(node.body):
            if isinstance(statement, cst.FunctionDef) and statement.name.value == name:
                return statement
        for base in self._base_classes(node):
            if id(base) not in self._in_progress:
                self._in_progress.add(id(base))
                try:
                    found = self._method(base, name)
                finally:
                    self._in_progress.discard(id(base))
                if found is not None:
                    return found
        return None

    def class_attributes(self, node: cst.ClassDef) -> dict:
        """`self.x = <value>` bindings of a class whose value is known and the same everywhere."""
        cached = self._attrs_cache.get(id(node))
        if cached is not None:
            return cached
        self._attrs_cache[id(node)] = {}  # breaks cycles
        values: dict[str, object] = {}
        for base in self._base_classes(node):
            values.update(self.class_attributes(base))
        own: dict[str, object] = {}
        for method in _suite_statements(node.body):
            if not isinstance(method, cst.FunctionDef):
                continue
            params = _param_names(method.params)
            if not params or not _is_plain_method(method):
                continue
            self_name = params[0].name.value
            env = {self_name: Instance(node, via_self=True)}
            for statement in walk_no_defs(method.body):
                if isinstance(statement, cst.Assign):
                    targets = [t.target for t in statement.targets]
                elif isinstance(statement, (cst.AnnAssign, cst.AugAssign)):
                    targets = [statement.target]
                else:
                    continue
                for target in targets:
                    for part in walk_no_defs(target):
                        if not (isinstance(part, cst.Attribute) and isinstance(part.value, cst.Name)
                                and part.value.value == self_name) or _sets_attribute_of(target, part):
                            continue
                        value = None  # unpacked, augmented or annotated-only: unknown
                        if part is target and isinstance(statement, cst.Assign):
                            value = self._eval(statement.value, env)
                        # Conflicting or unknown assignments make the attribute unknown.
                        attr = part.attr.value
                        own[attr] = value if own.get(attr, value) == value else None
        values.update(own)
        result = {k: v for k, v in values.items() if v is not None}
        self._attrs_cache[id(node)] = result
        return result

    def forward_output(self, node: cst.ClassDef) -> Tensor | Pack | None:
        """The kind of tensor a same-file model's `forward` returns on every path, if known."""
        key = id(node)
        if key in self._forward_cache:
            return self._forward_cache[key]
        forward = self._method(node, "forward")
        if forward is None or key in self._in_progress:
            return None
        self._in_progress.add(key)
        try:
            params = _param_names(forward.params)
            env = {params[0].name.value: Instance(node, via_self=True)} if params else {}
            returns: list = []
            _Interpreter(self, reporting=False, returns=returns).block(_suite_statements(forward.body), env)
        finally:
            self._in_progress.discard(key)
        result = None
        if returns and all(r == returns[0] for r in returns):
            result = self._model_output(node.name.value, returns[0])
        self._forward_cache[key] = result
        return result

    @staticmethod
    def _model_output(model: str, value):
        """A forward's returned tensor (or tuple of them), described as coming from the model."""
        if isinstance(value, Tensor):
            return Tensor(value.kind, f"the model `{model}`, whose forward returns {KIND_TEXT[value.kind]}")
        if isinstance(value, Pack):
            items = tuple(FlowAnalysis._model_output(model, item) if isinstance(item, Tensor) else None
                          for item in value.items)
            return Pack(items) if any(items) else None
        return None

    def eval_sensitive(self, node: cst.ClassDef) -> bool | None:
        """Whether a model class has layers that act differently in eval mode (dropout, batch norm...):
        True as soon as one is found; False when every layer it builds is known; None otherwise."""
        key = id(node)
        if key in self._sensitive_cache:
            return self._sensitive_cache[key]
        self._sensitive_cache[key] = False  # a cycle adds nothing
        unknown = False
        bodies = [node] + self._base_classes(node)
        for base in node.bases:
            name = self.ctx.qualname(base.value) or dotted_name(base.value) or ""
            if not (name in ("torch.nn.Module", "object") or self._classes.get(name.rsplit(".", 1)[-1])):
                unknown = True  # a base class from elsewhere may bring layers
        result = None
        for body in bodies:
            for part in walk(body):
                if isinstance(part, cst.Attribute) and part.attr.value == "training":
                    result = True  # the forward branches on `self.training`
                    break
                if not isinstance(part, cst.Call):
                    continue
                verdict = self._layer_sensitivity(part)
                if verdict:
                    result = True
                    break
                unknown |= verdict is None
            if result:
                break
        if result is None:
            result = None if unknown else False
        self._sensitive_cache[key] = result
        return result

    def _layer_sensitivity(self, call: cst.Call) -> bool | None:
        """True for a layer that acts differently in eval mode, False for a known other call, None if unknown."""
        qualname = self.ctx.qualname(call.func)
        func = call.func
        if qualname is not None:
            if qualname in _EVAL_SENSITIVE or qualname.startswith(_EVAL_SENSITIVE_PREFIXES):
                return True
            if qualname in _DROPOUT_ARG_LAYERS:
                rate = get_arg(call, None, "dropout")
                default_zero = qualname in _DROPOUT_DEFAULT_ZERO
                if rate is None:
                    return not default_zero
                return not (isinstance(rate, (cst.Integer, cst.Float)) and float(rate.value) == 0)
            if qualname.startswith(("torch.", "math.", "numpy.", "typing.", "functools.", "collections.")):
                return False
            head = qualname.rsplit(".", 1)[-1]
            found = foreign_class(self.ctx, qualname)
            if found is not None:
                return found.eval_sensitive
            return False if head[:1].islower() and not qualname.startswith(_MODEL_ZOOS) else None
        if isinstance(func, cst.Name):
            local = self._classes.get(func.value)
            if local is not None:
                return self.eval_sensitive(local)
            if func.value in _BUILTINS or func.value[:1].islower():
                return False
            return None
        if isinstance(func, cst.Attribute):
            return None if func.attr.value[:1].isupper() else False
        return None  # `getattr(nn, kind)(...)`

    # ---- scopes ----

    def _interpret(self, node: cst.CSTNode) -> dict | None:
        """Run a scope once, after the scope it is defined in and its callers; its final environment."""
        key = id(node)
        if key in self._done:
            return self._done[key]
        if key in self._active:
            return None  # recursion: judged without it
        self._active.add(key)
        try:
            body: cst.CSTNode
            if isinstance(node, cst.Module):
                body, params, env = node, [], {}
            else:
                function, cls, parent = self._scopes[key]
                env = self._enclosing_env(function, parent)
                body, params = function.body, _param_names(function.params)
                for param in params:
                    env.pop(param.name.value, None)
                env.update(self._param_values(function, cls))
                if cls is not None and params and _is_plain_method(function):
                    env[params[0].name.value] = Instance(cls, via_self=True)
            interpreter = _Interpreter(self, reporting=self.walked.is_relevant(node), recording=True)
            final = interpreter.block(_suite_statements(body), env)
        finally:
            self._active.discard(key)
        self._done[key] = final
        return final

    def _enclosing_env(self, function: cst.FunctionDef, parent: cst.CSTNode) -> dict:
        """What the function sees of the scope it is defined in when it runs: that scope's state at its
        calls when they are all made there (a script's functions called from its top level), else its
        final state."""
        final = self._interpret(parent) or {}
        sites = self.walked.calls_by_name.get(function.name.value, ())
        if not sites or function.name.value in self.walked.escaped:
            return dict(final)
        envs = []
        for scope, call in sites:
            site = self._site_env.get(id(call))
            if scope != id(parent) or site is None or site[0] != id(function):
                return dict(final)
            envs.append(site[1])
        return _merge(*envs)

    def _param_values(self, function: cst.FunctionDef, cls: cst.ClassDef | None) -> dict:
        """What every call site in the file passes to the function's parameters (only what they all agree on)."""
        name = function.name.value
        if cls is not None or name in self.walked.escaped or not self._plain_decorators(function):
            return {}
        sites = self.walked.calls_by_name.get(name, ())
        if not sites:
            return {}
        passed = []
        for scope, call in sites:
            node = self._scope_nodes.get(scope)
            if node is None or self._interpret(node) is None:
                return {}  # a caller still running (recursion): not all sites are known
            site = self._site_args.get(id(call))
            if site is None:
                return {}  # a call whose callee is unknown may be this function
            if site[0] == id(function):
                passed.append(site[1])
        if not passed:
            return {}
        merged = {k: _merge_value([p.get(k) for p in passed]) for k in passed[0]}
        return {k: v for k, v in merged.items() if v is not None}

    def _plain_decorators(self, function: cst.FunctionDef) -> bool:
        """Whether its decorators keep the calls as they are (`@torch.no_grad()`, not a framework's hook)."""
        for decorator in function.decorators:
            expr = decorator.decorator
            expr = expr.func if isinstance(expr, cst.Call) else expr
            if not (self.ctx.qualname(expr) or "").startswith(("torch.", "functools.")):
                return False
        return True

    def bind_arguments(self, function: cst.FunctionDef, call: cst.Call, env: dict, bound: bool = False) -> dict:
        """The values a call passes to a function's parameters (those known); `bound`: `self` is not passed."""
        params = [p for p in [*function.params.posonly_params, *function.params.params]][1 if bound else 0:]
        by_name = {p.name.value: p for p in _param_names(function.params)}
        values = {}
        position = 0
        for arg in call.args:
            if arg.star:
                if arg.keyword is None and arg.star == "*":
                    position = len(params)  # later positions unknown
                continue
            if arg.keyword is not None:
                if arg.keyword.value in by_name:
                    values[arg.keyword.value] = self._eval(arg.value, env)
            elif position < len(params):
                values[params[position].name.value] = self._eval(arg.value, env)
                position += 1
        return {k: v for k, v in values.items() if v is not None}

    def returned(self, function: cst.FunctionDef, call: cst.Call, env: dict, owner: Instance | None = None):
        """What a call of a file function (or of a method on `owner`) returns, run with this call's arguments."""
        key = id(function)
        if key in self._in_progress or (owner is None and id(function) not in self._def_env):
            return None
        args = self.bind_arguments(function, call, env, bound=owner is not None)
        if owner is not None:
            params = _param_names(function.params)
            if not params:
                return None
            args[params[0].name.value] = owner
        memo = (key, tuple(sorted(args.items())))
        if memo in self._returns_cache:
            return self._returns_cache[memo]
        self._in_progress.add(key)
        try:
            scope = dict(self._def_env.get(key, {}))
            for param in _param_names(function.params):
                scope.pop(param.name.value, None)
            scope.update(args)
            returns: list = []
            _Interpreter(self, reporting=False, returns=returns).block(_suite_statements(function.body), scope)
        finally:
            self._in_progress.discard(key)
        result = _merge_value(returns) if returns else None
        self._returns_cache[memo] = result
        return result

    # ---- expressions ----

    def _eval(self, expr: cst.BaseExpression, env: dict):
        """The abstract value of an expression, or None when unknown."""
        if isinstance(expr, cst.Name):
            value = env.get(expr.value)
            if value is None and expr.value not in env:
                cls = self._classes.get(expr.value)  # a class of this file, seen from a method
                return ClassRef(cls) if cls is not None else None
            return value
        if isinstance(expr, cst.Attribute):
            owner = self._eval(expr.value, env)
            if isinstance(owner, ForeignModule):
                summary = owner.summary.get(expr.attr.value)
                return ForeignClass(summary) if summary is not None else None
            if (isinstance(owner, Instance) and expr.attr.value not in self._reassigned_attrs
                    and not (owner.via_self and owner.node.name.value in self._subclassed)):
                found = self.class_attributes(owner.node).get(expr.attr.value)
                if found is None:
                    method = self._method(owner.node, expr.attr.value)
                    if method is not None and _is_plain_method(method) and method.name.value != "forward":
                        return BoundMethod(method, owner)
                return found
            return None
        if isinstance(expr, cst.Call):
            return self._eval_call(expr, env)
        if isinstance(expr, cst.Subscript):
            return self._subscript(expr, env)
        if isinstance(expr, cst.Tuple) and expr.elements and not any(
                isinstance(e, cst.StarredElement) for e in expr.elements):
            items = tuple(self._eval(e.value, env) for e in expr.elements)
            return Pack(items) if any(i is not None for i in items) else None
        return None

    def _subscript(self, expr: cst.Subscript, env: dict):
        value = self._eval(expr.value, env)
        if isinstance(value, Tensor):
            return value  # rows or a mask of probabilities are still probabilities
        if isinstance(value, Pack) and len(expr.slice) == 1 and isinstance(expr.slice[0].slice, cst.Index):
            index = expr.slice[0].slice.value  # `outputs[1]`, `outputs[-1]` of a known tuple
            if isinstance(index, (cst.Integer, cst.UnaryOperation)):
                try:
                    position = int(cst.Module([]).code_for_node(index))
                except ValueError:
                    return None
                return value.items[position] if -len(value.items) <= position < len(value.items) else None
        return None

    def _eval_call(self, call: cst.Call, env: dict):
        func = call.func
        qualname = self.ctx.qualname(func)
        if qualname is not None:
            if qualname in _TENSOR_FUNCTIONS:
                return Tensor(_TENSOR_FUNCTIONS[qualname], f"`{dotted_name(func)}(...)`")
            if qualname in _LAYERS:
                return Module(_LAYERS[qualname], f"a `{dotted_name(func)}` layer")
            if qualname in _LOSS_CLASSES:
                return Loss(_LOSS_CLASSES[qualname], f"`{dotted_name(func)}()`")
            if qualname == "torch.nn.Sequential":
                return self._sequential(call, env)
            if qualname in ("torch.nn.parallel.data_parallel", "torch.nn.parallel.data_parallel.data_parallel"):
                module = get_arg(call, 0, "module")  # runs the module on the inputs
                return self._call_value(self._eval(module, env), module) if module is not None else None
            if qualname in _LOG_FUNCTIONS:
                return self._log_of(get_arg(call, 0, "input"), env)
            if qualname.startswith("torch"):
                return None
        if isinstance(func, cst.Attribute) and qualname is None:
            method = func.attr.value
            if method in _TENSOR_METHODS and not isinstance(self._eval(func.value, env), Instance):
                return Tensor(_TENSOR_METHODS[method], f"`.{method}()`")
            if method in _KIND_KEEPING_METHODS:
                owner = self._eval(func.value, env)
                if isinstance(owner, Alternatives):  # a tuple has no tensor methods: only tensors get here
                    owner = _merge_value([o for o in owner.options if not isinstance(o, Pack)] or [None])
                return owner if isinstance(owner, (Tensor, Module, Loss, *_MODEL_VALUES)) else None
            if method == "log" and not call.args:
                return self._log_of(func.value, env)
            if method == "forward":
                return self._call_value(self._eval(func.value, env), func.value)
        return self._call_value(self._eval(func, env), func, call, env)

    def _call_value(self, callee, func: cst.BaseExpression, call: cst.Call | None = None, env: dict | None = None):
        if isinstance(callee, FunctionRef):
            return self.returned(callee.node, call, env) if call is not None and env is not None else None
        if isinstance(callee, BoundMethod):
            return self.returned(callee.node, call, env, callee.owner) if call is not None and env is not None else None
        if isinstance(callee, ForeignClass):
            return ForeignInstance(callee.summary)
        if isinstance(callee, ForeignInstance):
            return callee.summary.output
        if isinstance(callee, Models):
            outputs = [self._call_value(option, func) for option in callee.options]
            if all(o is not None and o == outputs[0] for o in outputs):
                return outputs[0]
            return Alternatives(frozenset(outputs))
        if isinstance(callee, Module):
            return Tensor(callee.kind, f"`{_short(self.module, func)}`, {callee.origin}")
        if isinstance(callee, ClassRef):
            return Instance(callee.node, via_self=False)
        if isinstance(callee, Instance):
            if callee.via_self and callee.node.name.value in self._subclassed:
                return None
            return self.forward_output(callee.node)
        return None

    def _sequential(self, call: cst.Call, env: dict):
        if not call.args or call.args[-1].star or call.args[-1].keyword is not None:
            return None
        last = self._eval(call.args[-1].value, env)
        if isinstance(last, Module):
            return Module(last.kind, f"an nn.Sequential ending in {last.origin}")
        return None

    def _log_of(self, expr: cst.BaseExpression | None, env: dict):
        value = self._eval(expr, env) if expr is not None else None
        if isinstance(value, Tensor) and value.kind in (SOFTMAX, SIGMOID):
            return Tensor(LOGPROB, f"the log of {value.origin}")
        return None

    def bind_import(self, node: cst.Import | cst.ImportFrom, env: dict) -> None:
        """Names imported from another checked file stand for its summary; other imports are unknown."""
        project, here = self.ctx.project, self.ctx.file_path
        if isinstance(node, cst.Import):
            for alias in node.names:
                full = dotted_name(alias.name) or ""
                bound = alias.asname.name.value if alias.asname and isinstance(alias.asname.name, cst.Name) \
                    else full.split(".", 1)[0]
                named = full if alias.asname else full.split(".", 1)[0]
                path = project.resolve(here, named) if project is not None else None
                summary = project.summary(path) if path else None
                _Interpreter.bind(cst.Name(bound), ForeignModule(summary) if summary else None, env)
            return
        if isinstance(node.names, cst.ImportStar):
            return
        module = dotted_name(node.module) if node.module is not None else ""
        path = project.resolve(here, module, len(node.relative)) if project is not None and module is not None \
            else None
        summary = project.summary(path) if path else None
        for alias in node.names:
            name = dotted_name(alias.name) or ""
            bound = alias.asname.name.value if alias.asname and isinstance(alias.asname.name, cst.Name) else name
            found = summary.get(name) if summary else None
            _Interpreter.bind(cst.Name(bound), ForeignClass(found) if found else None, env)

    def loss_of(self, call: cst.Call, env: dict) -> tuple[str, str] | None:
        """(family, display name) when `call` computes one of the watched losses."""
        qualname = self.ctx.qualname(call.func)
        if qualname in _LOSS_FUNCTIONS:
            return _LOSS_FUNCTIONS[qualname], f"`{dotted_name(call.func)}`"
        if qualname is None and isinstance(call.func, (cst.Name, cst.Attribute, cst.Call)):
            value = self._eval(call.func, env)
            if isinstance(value, Loss):
                name = dotted_name(call.func)
                return value.family, (f"`{name}` ({value.origin})" if name else value.origin)
        return None


    def assigned_names(self, statements) -> set[str]:
        """Names a block may rebind (over-approximated: extra names only make the analysis forget);
        each statement's names computed once per file (loops are interpreted again
        for every function that reaches them)."""
        names: set[str] = set()
        for statement in statements:
            known = self._assigned.get(id(statement))
            if known is None:
                known = self._assigned[id(statement)] = _assigned_in(statement)
            names |= known
        return names


_SCANNED = frozenset({cst.Call, cst.CompFor, cst.NamedExpr})  # exact types, as for _BINDERS


class _Interpreter:
    """Runs statements in order over an environment {name: abstract value}."""

    def __init__(self, analysis: FlowAnalysis, reporting: bool, returns: list | None = None, recording: bool = False):
        self.analysis = analysis
        self.reporting = reporting
        self.returns = returns
        self.recording = recording  # the scope's own run: note what its calls pass and invoke

    def block(self, statements, env: dict) -> dict:
        for statement in statements:
            env = self.statement(statement, env)
        return env

    def statement(self, node: cst.CSTNode, env: dict) -> dict:
        if isinstance(node, (cst.SimpleStatementLine, cst.SimpleStatementSuite)):
            for small in node.body:
                self.small_statement(small, env)
            return env
        if isinstance(node, cst.If):
            self.scan(node.test, env)
            if _is_main_guard(node.test):  # the script's own entry point: it runs
                return self.block(_suite_statements(node.body), env)
            taken = self.block(_suite_statements(node.body), dict(env))
            if isinstance(node.orelse, cst.If):
                other = self.statement(node.orelse, dict(env))
            elif isinstance(node.orelse, cst.Else):
                other = self.block(_suite_statements(node.orelse.body), dict(env))
            else:
                other = env
            return _merge(taken, other)
        if isinstance(node, (cst.For, cst.While)):
            if isinstance(node, cst.For):
                self.scan(node.iter, env)
            body = _suite_statements(node.body)
            # Values may flow around the loop: forget what the body rebinds before running it.
            killed = self.analysis.assigned_names(body)
            if isinstance(node, cst.For):
                killed |= _names_in(node.target)
            entry = {k: v for k, v in env.items() if k not in killed}
            if isinstance(node, cst.While):
                self.scan(node.test, entry)
            after = _merge(env, self.block(body, entry))
            if node.orelse is not None:
                after = self.block(_suite_statements(node.orelse.body), after)
            return after
        if isinstance(node, cst.With):
            for item in node.items:
                self.scan(item.item, env)
                if item.asname is not None:
                    for name in _names_in(item.asname.name):
                        env.pop(name, None)
            return self.block(_suite_statements(node.body), env)
        if isinstance(node, cst.Try):
            body = _suite_statements(node.body)
            entry = {k: v for k, v in env.items() if k not in self.analysis.assigned_names(body)}
            done = self.block(body, dict(env))
            if node.orelse is not None:
                done = self.block(_suite_statements(node.orelse.body), done)
            ends = [done] + [self.block(_suite_statements(h.body), dict(entry)) for h in node.handlers]
            after = _merge(*ends)
            if node.finalbody is not None:
                after = self.block(_suite_statements(node.finalbody.body), after)
            return after
        if isinstance(node, cst.FunctionDef):
            if self.recording:
                self.analysis._def_env[id(node)] = dict(env)
            env[node.name.value] = FunctionRef(node)
            return env
        if isinstance(node, cst.ClassDef):
            env[node.name.value] = ClassRef(node)
            return env
        # Anything else (match, try*, async constructs): forget what it may rebind.
        return {k: v for k, v in env.items() if k not in self.analysis.assigned_names([node])}

    def small_statement(self, node: cst.BaseSmallStatement, env: dict) -> None:
        self.scan(node, env)
        if isinstance(node, cst.Assign):
            value = self.analysis._eval(node.value, env)
            for target in node.targets:
                self.bind(target.target, value, env)
        elif isinstance(node, cst.AnnAssign):
            value = self.analysis._eval(node.value, env) if node.value is not None else None
            self.bind(node.target, value, env)
        elif isinstance(node, cst.Return):
            if self.returns is not None:
                value = self.analysis._eval(node.value, env) if node.value is not None else None
                self.returns.append(value)
        elif isinstance(node, (cst.Import, cst.ImportFrom)):
            self.analysis.bind_import(node, env)
        else:
            for name in self.analysis.assigned_names([node]):
                env.pop(name, None)

    @classmethod
    def bind(cls, target: cst.BaseExpression, value, env: dict) -> None:
        if isinstance(target, (cst.Tuple, cst.List)) and isinstance(value, Alternatives):
            # `output, hidden = model(x)`: only the models returning that many values can be meant.
            fitting = {v for v in value.options if isinstance(v, Pack) and len(v.items) == len(target.elements)}
            value = fitting.pop() if len(fitting) == 1 else None
        if isinstance(target, cst.Name):
            if value is None:
                env.pop(target.value, None)
            else:
                env[target.value] = value
        elif isinstance(target, (cst.Tuple, cst.List)) and isinstance(value, Pack) \
                and len(value.items) == len(target.elements) \
                and not any(isinstance(e, cst.StarredElement) for e in target.elements):
            for element, item in zip(target.elements, value.items):
                cls.bind(element.value, item, env)
        else:
            for name in _names_in(target) if not isinstance(target, cst.Attribute) else ():
                env.pop(name, None)

    def record(self, call: cst.Call, env: dict) -> None:
        func = call.func
        analysis = self.analysis
        if isinstance(func, cst.Name):
            callee = env.get(func.value)
        elif isinstance(func, cst.Attribute) and isinstance(func.value, cst.Name):
            callee = analysis._eval(func, env)
        else:
            return
        if callee is None:
            return
        analysis._callees[id(call)] = callee
        if isinstance(callee, FunctionRef):
            analysis._site_args[id(call)] = (id(callee.node), analysis.bind_arguments(callee.node, call, env))
            analysis._site_env[id(call)] = (id(callee.node), dict(env))

    def scan(self, node: cst.CSTNode, env: dict) -> None:
        """Check every watched loss call in a statement or expression (not in nested defs), and note
        what calls to this file's functions pass."""
        if not (self.reporting or self.recording):
            return
        analysis = self.analysis
        calls = []
        shadowed: set[str] = set()
        for child in walk_no_defs(node):
            if type(child) not in _SCANNED:
                continue
            if isinstance(child, cst.Call):
                calls.append(child)
            elif isinstance(child, (cst.CompFor, cst.NamedExpr)):
                shadowed |= _names_in(child.target)
        if not calls:
            return
        if shadowed:
            env = {k: v for k, v in env.items() if k not in shadowed}
        if self.recording:
            for call in calls:
                self.record(call, env)
        if not self.reporting:
            return
        for call in calls:
            loss = analysis.loss_of(call, env)
            if loss is None:
                continue
            given = get_arg(call, 0, "input")
            value = analysis._eval(given, env) if given is not None else None
            if isinstance(value, Tensor) and id(call) not in analysis.found:
                family, display = loss
                analysis.found[id(call)] = Finding(family, value.kind, call, _message(
                    family, value, display, _short(analysis.module, call if given is None else given)))


def _message(family: str, value: Tensor, loss: str, given: str) -> str:
    what = f"`{given}` is {KIND_TEXT[value.kind]}"
    if not value.origin.startswith(f"`{given.split('(', 1)[0]}("):  # a direct call names itself
        what += f" (from {value.origin})"
    if family == CROSS_ENTROPY:
        return (f"{what}, but {loss} applies log_softmax itself: pass the raw logits"
                if value.kind != LOGPROB else
                f"{what}, but {loss} applies log_softmax again: pass the raw logits, or use nll_loss")
    if family == BCE:
        return f"{what}: {loss} on probabilities loses precision; pass the logits to BCEWithLogitsLoss instead"
    if value.kind == LOGITS:
        return f"{what}, but {loss} expects log-probabilities: apply log_softmax first, or use cross_entropy"
    return f"{what}, but {loss} expects log-probabilities: use log_softmax instead of softmax"


ALL_TRIGGERS = frozenset().union(*TRIGGER_NAMES.values())


def foreign_class(ctx, qualname: str) -> ClassSummary | None:
    """The summary of a class imported from another checked file (`from model import Net`: "model.Net")."""
    if ctx.project is None or not ctx.file_path:
        return None
    module, _, name = qualname.rpartition(".")
    level = len(module) - len(module.lstrip("."))
    path = ctx.project.resolve(ctx.file_path, module.lstrip("."), level)
    summary = ctx.project.summary(path) if path else None
    return summary.get(name) if summary else None


def eval_sensitive(analysis: FlowAnalysis, value) -> bool | None:
    """Whether a model value has layers that act differently in eval mode (None: unknown model)."""
    if isinstance(value, Instance):
        return analysis.eval_sensitive(value.node)
    if isinstance(value, ForeignInstance):
        return value.summary.eval_sensitive
    if isinstance(value, Models):
        verdicts = [eval_sensitive(analysis, option) for option in value.options]
        return None if None in verdicts else any(verdicts)
    if isinstance(value, Module):
        return False  # a single layer of a known kind (linear, conv, softmax...)
    return None


def summarize(ctx) -> ModuleSummary:
    """What other files may know of this module: its model classes' outputs and eval-mode layers."""
    from nnlint.static.facts.lossflow import LossFlowFacts

    analysis = FlowAnalysis(ctx, LossFlowFacts(ctx))
    classes = []
    for statement in ctx.module.body:
        if isinstance(statement, cst.ClassDef) and analysis._classes.get(statement.name.value) is statement:
            name = statement.name.value
            output = analysis.forward_output(statement)
            is_module = analysis._method(statement, "forward") is not None or any(
                (ctx.qualname(base.value) or "").startswith("torch.nn.") for base in statement.bases)
            classes.append((name, ClassSummary(name, ctx.path, output, analysis.eval_sensitive(statement), is_module)))
    return ModuleSummary(ctx.path, tuple(classes))
