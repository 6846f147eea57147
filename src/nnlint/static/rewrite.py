"""Tree helpers for rules' fixes: the statement holding a node, and moves of whole statements."""

from __future__ import annotations

import libcst as cst

from nnlint.diagnostics import Applicability
from nnlint.rule import NodeFix
from nnlint.tree import walk


def statement_siblings(root: cst.CSTNode, node: cst.CSTNode) -> tuple[list[cst.BaseStatement], int] | None:
    """(the statements of the block, index) of the one-statement line under `root` whose statement is
    `node` or an expression statement of it; None when `node` shares its line or is nested deeper."""
    for block in walk(root):
        if isinstance(block, (cst.Module, cst.IndentedBlock)):
            for index, statement in enumerate(block.body):
                if isinstance(statement, cst.SimpleStatementLine) and len(statement.body) == 1:
                    small = statement.body[0]
                    if small is node or getattr(small, "value", None) is node:
                        return list(block.body), index
    return None


def swap_statements(module: cst.Module, first: cst.BaseStatement, second: cst.BaseStatement, message: str,
                    applicability: Applicability) -> NodeFix | None:
    """Exchange two sibling statements of one block, each with its own text. A comment at the end of
    a line stays on that line; a comment line above either statement (which describes it) or inside
    a compound statement's header refuses the fix."""
    for statement in (first, second):
        if any(line.comment for line in getattr(statement, "leading_lines", ())):
            return None
        if not isinstance(statement, cst.SimpleStatementLine) and "#" in module.code_for_node(statement):
            return None
    return NodeFix(message, ((first, second), (second, first)), applicability)


def contains(root: cst.CSTNode, node: cst.CSTNode) -> bool:
    return any(n is node for n in walk(root))
