"""What the loss rules' value-flow analysis (static/flow.py) needs from the engine's walk."""

from __future__ import annotations

import libcst as cst

from nnlint.static.facts import Facts
from nnlint.static.facts.names import final_name


class LossFlowFacts(Facts):
    """Records, during the one walk, which final names each function calls and which names may hold
    a loss object, so the analysis interprets only functions that may compute a watched loss; and
    which attributes are assigned from outside their class. The analysis itself runs once, on request.
    """

    def __init__(self, ctx):
        super().__init__(ctx)
        self._scopes: list[int] = [id(ctx.module)]
        self.called: dict[int, set[str]] = {id(ctx.module): set()}
        self.loss_names: set[str] = set()
        self.reassigned_attrs: set[str] = set()
        self._analysis = None

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self._scopes.append(id(node))
        self.called[id(node)] = set()

    def leave_FunctionDef(self, node: cst.FunctionDef) -> None:
        self._scopes.pop()

    def visit_Call(self, node: cst.Call) -> None:
        name = final_name(node.func)
        if name is not None:
            self.called[self._scopes[-1]].add(name)

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
        # `criterion = nn.CrossEntropyLoss().to(device)`: the name may hold a loss.
        while isinstance(value, cst.Call):
            if final_name(value.func) in ALL_TRIGGERS:
                self.loss_names.update(filter(None, map(final_name, targets)))
                return
            value = value.func.value if isinstance(value.func, cst.Attribute) else None

    def is_relevant(self, node: cst.CSTNode) -> bool:
        from nnlint.static.flow import ALL_TRIGGERS

        names = self.called.get(id(node), ())
        return any(n in ALL_TRIGGERS or n in self.loss_names for n in names)

    def analysis(self):
        """The flow analysis of the whole file (static/flow.py), run once after the walk."""
        if self._analysis is None:
            from nnlint.static.flow import FlowAnalysis

            self._analysis = FlowAnalysis(self.ctx, self)
        return self._analysis
