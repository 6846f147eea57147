"""What rules see of a file while the engine walks it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import libcst as cst

from nnlint.imports import ImportTable

if TYPE_CHECKING:
    from nnlint.rule import NodeFix, Rule
    from nnlint.static.project import ProjectIndex


@dataclass
class Report:
    rule: type["Rule"]
    node: cst.CSTNode
    message: str
    fix: "NodeFix | None" = None


class FileContext:
    def __init__(self, path: str, module: cst.Module, project: "ProjectIndex | None" = None,
                 file_path: str | None = None):
        self.path = path
        self.module = module
        self.project = project  # the files checked together, for facts that cross files
        self.file_path = file_path  # where the file is read from (None for text without a file)
        self.imports = ImportTable()
        self.reports: list[Report] = []
        self._shared: dict = {}

    def report(self, rule: "Rule", node: cst.CSTNode, message: str, fix: "NodeFix | None" = None) -> None:
        self.reports.append(Report(type(rule), node, message, fix))

    def shared(self, key: str, build: Callable[[], object]):
        """Per-file facts several rules of a family use, built once by whichever rule asks first."""
        if key not in self._shared:
            self._shared[key] = build()
        return self._shared[key]

    def qualname(self, expr: cst.BaseExpression) -> str | None:
        """The qualified name behind an imported dotted expression, e.g. `F.softmax`."""
        return self.imports.resolve(expr)

    def call_name(self, node: cst.CSTNode) -> str | None:
        """The qualified name of the function a call invokes, when it resolves through imports."""
        if isinstance(node, cst.Call):
            return self.imports.resolve(node.func)
        return None
