"""What rules see of a file while the engine walks it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

import libcst as cst

from nnlint.imports import ImportTable

if TYPE_CHECKING:
    from nnlint.rule import NodeFix, Rule
    from nnlint.static.facts import Facts
    from nnlint.static.project import ProjectIndex

F = TypeVar("F", bound="Facts")


@dataclass
class Report:
    rule: type[Rule]
    node: cst.CSTNode
    message: str
    fix: NodeFix | None = None


class FileContext:
    def __init__(self, path: str, module: cst.Module, project: ProjectIndex | None = None,
                 file_path: str | None = None):
        self.path = path
        self.module = module
        self.project = project  # the files checked together, for facts that cross files
        self.file_path = file_path  # where the file is read from (None for text without a file)
        self.imports = ImportTable()
        self.reports: list[Report] = []
        self.walk_started = False
        self._facts: dict[type, object] = {}

    def report(self, rule: Rule, node: cst.CSTNode, message: str, fix: NodeFix | None = None) -> None:
        self.reports.append(Report(type(rule), node, message, fix))

    def facts(self, kind: type[F]) -> F:
        """The file's facts of this kind, computed once (see nnlint.static.facts)."""
        found = self._facts.get(kind)
        if found is None:
            if self.walk_started and kind.walks():
                raise LookupError(f"{kind.__name__} is fed by the walk: list it in the rule's `uses`")
            for needed in kind.needs:
                self.facts(needed)
            found = self._facts[kind] = kind(self)
        return found  # type: ignore[return-value]

    def providers(self) -> list:
        """The fact providers created so far, in creation order (dependencies first)."""
        return list(self._facts.values())

    def qualname(self, expr: cst.BaseExpression) -> str | None:
        """The qualified name behind an imported dotted expression, e.g. `F.softmax`."""
        return self.imports.resolve(expr)

    def call_name(self, node: cst.CSTNode) -> str | None:
        """The qualified name of the function a call invokes, when it resolves through imports."""
        if type(node) is cst.Call:  # exact type: asked for every call by many rules
            return self.imports.resolve(node.func)
        return None
