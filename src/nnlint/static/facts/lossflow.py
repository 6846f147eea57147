"""What the value-flow analysis (static/flow.py) needs from the engine's walk.

Read by the loss rules (NNL401-404), NNL502 (is the evaluated model one with dropout or batch norm?)
and NNL204 (which classes are models of other checked files).
"""

from __future__ import annotations

import libcst as cst

from nnlint.static.facts import Facts
from nnlint.static.facts.names import final_name


class LossFlowFacts(Facts):
    """Records, during the one walk, which final names each function calls, which names may hold a loss
    object, and which attributes are assigned from outside their class, so the analysis interprets only
    the functions that matter; where each plain `f(...)` call is and which names escape as values, so a
    function's parameters can be taken from every call site. The analysis itself runs once, on request.
    """

    def __init__(self, ctx):
        super().__init__(ctx)
        self._scopes: list[int] = [id(ctx.module)]
        self._params: list[set[str]] = [set()]  # parameters of the enclosing functions (never file functions)
        self.called: dict[int, set[str]] = {id(ctx.module): set()}
        self.loss_names: set[str] = set()
        self.reassigned_attrs: set[str] = set()
        self.calls_by_name: dict[str, list[tuple[int, cst.Call]]] = {}  # `f(...)` calls: (scope id, call)
        self.scope_of_call: dict[int, int] = {}  # call id -> scope id, for `f(...)` and `a.f(...)`
        self.escaped: set[str] = set()  # names passed or assigned as values: functions called from elsewhere
        self.calls_parameter: set[int] = set()  # scopes calling one of their parameters (a criterion passed in)
        self._analysis = None

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        from nnlint.static.flow import _param_names

        self._scopes.append(id(node))
        self._params.append({p.name.value for p in _param_names(node.params)})
        self.called[id(node)] = set()

    def leave_FunctionDef(self, node: cst.FunctionDef) -> None:
        self._scopes.pop()
        self._params.pop()

    def visit_Call(self, node: cst.Call) -> None:
        scope = self._scopes[-1]
        func = node.func
        name = final_name(func)
        if name is not None:
            self.called[scope].add(name)
        if isinstance(func, cst.Name):
            self.calls_by_name.setdefault(func.value, []).append((scope, node))
            self.scope_of_call[id(node)] = scope
            if func.value in self._params[-1]:
                self.calls_parameter.add(scope)
        elif isinstance(func, cst.Attribute) and isinstance(func.value, cst.Name):
            self.scope_of_call[id(node)] = scope
        for arg in node.args:
            if isinstance(arg.value, cst.Name) and arg.value.value not in self._params[-1]:
                self.escaped.add(arg.value.value)

    def visit_Assign(self, node: cst.Assign) -> None:
        self._assignment([t.target for t in node.targets], node.value)

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        self._assignment([node.target], node.value)

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        self._assignment([node.target], None)

    def _assignment(self, targets: list[cst.BaseExpression], value: cst.BaseExpression | None) -> None:
        from nnlint.static.flow import ALL_TRIGGERS

        for target in targets:
            if isinstance(target, cst.Attribute) and not (
                    isinstance(target.value, cst.Name) and target.value.value == "self"):
                self.reassigned_attrs.add(target.attr.value)
        if isinstance(value, cst.Name) and value.value not in self._params[-1]:
            self.escaped.add(value.value)
        # `criterion = nn.CrossEntropyLoss().to(device)`: the name may hold a loss.
        while isinstance(value, cst.Call):
            if final_name(value.func) in ALL_TRIGGERS:
                self.loss_names.update(filter(None, map(final_name, targets)))
                return
            value = value.func.value if isinstance(value.func, cst.Attribute) else None

    def is_relevant(self, node: cst.CSTNode) -> bool:
        from nnlint.static.flow import ALL_TRIGGERS

        if id(node) in self.calls_parameter:
            return True
        names = self.called.get(id(node), ())
        return any(n in ALL_TRIGGERS or n in self.loss_names for n in names)

    def analysis(self):
        """The flow analysis of the whole file (static/flow.py), run once after the walk."""
        if self._analysis is None:
            from nnlint.static.flow import FlowAnalysis

            self._analysis = FlowAnalysis(self.ctx, self)
        return self._analysis
