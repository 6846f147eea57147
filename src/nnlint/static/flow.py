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

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import libcst as cst

from nnlint.imports import dotted_name
from nnlint.static.calls import get_arg
from nnlint.tree import walk_no_defs

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
class TupleValue:
    """A tuple of values (None where unknown): a model returning `(validity, label)`."""

    items: tuple


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
class Finding:
    family: str  # the loss family: which rule it belongs to
    kind: str  # the kind of tensor given to it
    call: cst.Call
    message: str


@dataclass
class _Scope:
    """A function (or the module) waiting to be interpreted."""

    node: cst.FunctionDef | cst.Module
    cls: cst.ClassDef | None = None
    enclosing: dict = field(default_factory=dict)


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


def _nested_defs(suite) -> list[tuple[cst.FunctionDef, cst.ClassDef | None]]:
    """Functions and methods defined in a body, without entering them."""
    found: list[tuple[cst.FunctionDef, cst.ClassDef | None]] = []
    stack = _suite_statements(suite)
    while stack:
        statement = stack.pop()
        if isinstance(statement, cst.FunctionDef):
            found.append((statement, None))
        elif isinstance(statement, cst.ClassDef):
            found += [(m, statement) for m in _suite_statements(statement.body) if isinstance(m, cst.FunctionDef)]
        else:
            stack.extend(_child_statements(statement))
    return found


def _names_in(target: cst.CSTNode) -> set[str]:
    return {n.value for n in walk_no_defs(target) if isinstance(n, cst.Name)}


def assigned_names(statements) -> set[str]:
    """Names a block may rebind (over-approximated: extra names only make the analysis forget)."""
    names: set[str] = set()
    for statement in statements:
        for node in walk_no_defs(statement):
            if isinstance(node, cst.AssignTarget):
                names |= _names_in(node.target)
            elif isinstance(node, (cst.AnnAssign, cst.AugAssign, cst.For, cst.CompFor)):
                names |= _names_in(node.target)
            elif isinstance(node, cst.NamedExpr):
                names |= _names_in(node.target)
            elif isinstance(node, cst.AsName):
                names |= _names_in(node.name)
            elif isinstance(node, cst.ImportAlias):
                names.add((dotted_name(node.name) or "").split(".", 1)[0])
            elif isinstance(node, (cst.FunctionDef, cst.ClassDef)):
                names.add(node.name.value)
            elif isinstance(node, (cst.Global, cst.Nonlocal)):
                names |= {item.name.value for item in node.names}
    return names


def _merge(*envs: dict) -> dict:
    first, rest = envs[0], envs[1:]
    return {k: v for k, v in first.items() if all(e.get(k) is not None and e.get(k) == v for e in rest)}


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
        self.findings: dict[int, Finding] = {}
        self._classes: dict[str, cst.ClassDef | None] = {}
        self._subclassed: set[str] = set()
        self._attrs_cache: dict[int, dict] = {}
        self._forward_cache: dict[int, Tensor | None] = {}
        self._in_progress: set[int] = set()
        self._collect_classes(self.module.body)
        self._reassigned_attrs = walked.reassigned_attrs
        self._interpret_scopes(_Scope(self.module))

    # ---- file structure ----

    def _collect_classes(self, statements) -> None:
        # Only the statement skeleton is visited here, never expressions: it is cheap.
        stack = list(statements)
        while stack:
            statement = stack.pop()
            if isinstance(statement, cst.ClassDef):
                name = statement.name.value
                self._classes[name] = None if name in self._classes else statement
                for base in statement.bases:
                    base_name = dotted_name(base.value)
                    if base_name:
                        self._subclassed.add(base_name.rsplit(".", 1)[-1])
            stack.extend(_child_statements(statement))

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
                                and part.value.value == self_name):
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

    def forward_output(self, node: cst.ClassDef) -> Tensor | None:
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
        name = node.name.value
        if returns and all(isinstance(r, Tensor) and r == returns[0] for r in returns):
            result = Tensor(returns[0].kind, f"the model `{name}`, whose forward returns {KIND_TEXT[returns[0].kind]}")
        elif returns and all(isinstance(r, TupleValue) and r == returns[0] for r in returns):
            result = TupleValue(tuple(
                Tensor(item.kind, f"output {index} of `{name}.forward`") if isinstance(item, Tensor) else None
                for index, item in enumerate(returns[0].items)))
        self._forward_cache[key] = result
        return result

    # ---- scopes ----

    def _interpret_scopes(self, first: _Scope) -> None:
        pending = [first]
        while pending:
            scope = pending.pop()
            relevant = self.walked.is_relevant(scope.node)
            body: cst.CSTNode
            params: list[cst.Param]
            if isinstance(scope.node, cst.Module):
                body, params, env = scope.node, [], {}
            elif relevant:
                body, params, env = scope.node.body, _param_names(scope.node.params), dict(scope.enclosing)
            else:
                # Nothing to check here: skip it, and let its nested defs start knowing nothing.
                pending += [_Scope(nested, cls) for nested, cls in _nested_defs(scope.node.body)]
                continue
            for param in params:
                env.pop(param.name.value, None)
            if scope.cls is not None and params and isinstance(scope.node, cst.FunctionDef) \
                    and _is_plain_method(scope.node):
                env[params[0].name.value] = Instance(scope.cls, via_self=True)
            interpreter = _Interpreter(self, reporting=relevant)
            final = interpreter.block(_suite_statements(body), env)
            # Nested functions see the enclosing scope as it is when they run: its final state.
            pending += [_Scope(nested, cls, final) for nested, cls in interpreter.nested]

    # ---- expressions ----

    def _eval(self, expr: cst.BaseExpression, env: dict):
        """The abstract value of an expression, or None when unknown."""
        if isinstance(expr, cst.Name):
            return env.get(expr.value)
        if isinstance(expr, cst.Attribute):
            owner = self._eval(expr.value, env)
            if (isinstance(owner, Instance) and expr.attr.value not in self._reassigned_attrs
                    and not (owner.via_self and owner.node.name.value in self._subclassed)):
                return self.class_attributes(owner.node).get(expr.attr.value)
            return None
        if isinstance(expr, cst.Call):
            return self._eval_call(expr, env)
        if isinstance(expr, cst.Tuple) and not any(isinstance(e, cst.StarredElement) for e in expr.elements):
            return TupleValue(tuple(self._eval(e.value, env) for e in expr.elements))
        if isinstance(expr, cst.Subscript):
            return _item(self._eval(expr.value, env), expr)
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
                return owner if isinstance(owner, (Tensor, Module, Instance, Loss)) else None
            if method == "log" and not call.args:
                return self._log_of(func.value, env)
            if method == "forward":
                return self._call_value(self._eval(func.value, env), func.value)
        return self._call_value(self._eval(func, env), func)

    def _call_value(self, callee, func: cst.BaseExpression):
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


class _Interpreter:
    """Runs statements in order over an environment {name: abstract value}."""

    def __init__(self, analysis: FlowAnalysis, reporting: bool, returns: list | None = None):
        self.analysis = analysis
        self.reporting = reporting
        self.returns = returns
        self.nested: list[tuple[cst.FunctionDef, cst.ClassDef | None]] = []

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
            killed = assigned_names(body) | (_names_in(node.target) if isinstance(node, cst.For) else set())
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
            entry = {k: v for k, v in env.items() if k not in assigned_names(body)}
            done = self.block(body, dict(env))
            if node.orelse is not None:
                done = self.block(_suite_statements(node.orelse.body), done)
            ends = [done] + [self.block(_suite_statements(h.body), dict(entry)) for h in node.handlers]
            after = _merge(*ends)
            if node.finalbody is not None:
                after = self.block(_suite_statements(node.finalbody.body), after)
            return after
        if isinstance(node, cst.FunctionDef):
            env.pop(node.name.value, None)
            self.nested.append((node, None))
            return env
        if isinstance(node, cst.ClassDef):
            env[node.name.value] = ClassRef(node)
            for method in _suite_statements(node.body):
                if isinstance(method, cst.FunctionDef):
                    self.nested.append((method, node))
            return env
        # Anything else (match, try*, async constructs): forget what it may rebind.
        return {k: v for k, v in env.items() if k not in assigned_names([node])}

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
        else:
            for name in assigned_names([node]):
                env.pop(name, None)

    @staticmethod
    def bind(target: cst.BaseExpression, value, env: dict) -> None:
        if isinstance(target, cst.Name):
            if value is None:
                env.pop(target.value, None)
            else:
                env[target.value] = value
        elif (isinstance(target, (cst.Tuple, cst.List)) and isinstance(value, TupleValue)
              and len(target.elements) == len(value.items)
              and not any(isinstance(e, cst.StarredElement) for e in target.elements)):
            for element, item in zip(target.elements, value.items):  # `validity, label = discriminator(x)`
                _Interpreter.bind(element.value, item, env)
        else:
            for name in _names_in(target) if not isinstance(target, cst.Attribute) else ():
                env.pop(name, None)

    def scan(self, node: cst.CSTNode, env: dict) -> None:
        """Check every watched loss call in a statement or expression (not in nested defs)."""
        if not self.reporting:
            return
        analysis = self.analysis
        calls = []
        shadowed: set[str] = set()
        for child in walk_no_defs(node):
            if isinstance(child, cst.Call):
                calls.append(child)
            elif isinstance(child, cst.CompFor):
                shadowed |= _names_in(child.target)
            elif isinstance(child, cst.NamedExpr):
                shadowed |= _names_in(child.target)
        if not calls:
            return
        if shadowed:
            env = {k: v for k, v in env.items() if k not in shadowed}
        for call in calls:
            loss = analysis.loss_of(call, env)
            if loss is None:
                continue
            given = get_arg(call, 0, "input")
            value = analysis._eval(given, env) if given is not None else None
            if isinstance(value, Tensor) and id(call) not in analysis.findings:
                family, display = loss
                analysis.findings[id(call)] = Finding(family, value.kind, call, _message(
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


def _item(value, subscript: cst.Subscript):
    """`outputs[1]` of a known tuple: the element, for a literal index."""
    if not isinstance(value, TupleValue) or len(subscript.slice) != 1:
        return None
    index = subscript.slice[0].slice
    if not isinstance(index, cst.Index) or not isinstance(index.value, (cst.Integer, cst.UnaryOperation)):
        return None
    try:
        position = int(cst.Module([]).code_for_node(index.value))
    except ValueError:
        return None
    return value.items[position] if -len(value.items) <= position < len(value.items) else None


ALL_TRIGGERS = frozenset().union(*TRIGGER_NAMES.values())
