"""Parsing a buffer again after an edit, reusing the top-level statements whose text did not change.

A language server checks the same file after every keystroke, and libcst's parse is the largest part
of that check. The text is cut before each top-level statement (where Python's own parser says they
start); each piece is parsed alone, or taken from the previous parse when its text is the same, and
the pieces are joined into the module libcst builds from the whole text: the blank and comment lines
a piece ends with become the leading lines of the next piece's statement. Whatever does not fit that
picture (indentation or line endings that differ between pieces, a piece that is not one statement)
falls back to parsing the whole text.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Sequence

import libcst as cst

from nnlint.tree import children

Statement = cst.SimpleStatementLine | cst.BaseCompoundStatement  # what a module's body holds


class Reparser:
    """Parses successive versions of one file; keeps the pieces of the last version."""

    def __init__(self) -> None:
        self._pieces: dict[str, cst.Module] = {}
        # id of a piece's statement -> (that statement, the previous piece's trailing lines, the two joined)
        self._joined: dict[int, tuple[Statement, Sequence[cst.EmptyLine], Statement]] = {}
        self.statement_lines: list[int] | None = None  # where each statement of the last module begins

    def parse(self, text: str) -> cst.Module:
        """The module libcst would parse from `text` (raises as `libcst.parse_module` does)."""
        self.statement_lines = None
        starts = _statement_starts(text) if "\r" not in text else []  # lines as Python counts them: "\n" only
        if len(starts) < 2:
            return cst.parse_module(text)
        lines = text.split("\n")
        lines = [line + "\n" for line in lines[:-1]] + ([lines[-1]] if lines[-1] else [])  # not splitlines():
        bounds = [0, *(start - 1 for start in starts[1:]), len(lines)]  # a form feed is no line end
        texts = ["".join(lines[begin:end]) for begin, end in zip(bounds, bounds[1:])]
        pieces: dict[str, cst.Module] = {}
        for piece in texts:
            if piece not in pieces:
                try:
                    pieces[piece] = self._pieces.get(piece) or cst.parse_module(piece)
                except cst.ParserSyntaxError:  # a cut libcst does not take alone: the whole text decides
                    return cst.parse_module(text)
        parsed = [pieces[piece] for piece in texts]
        self._pieces = pieces
        joined = self._join(parsed, bounds)
        if joined is None:
            return cst.parse_module(text)
        module, self.statement_lines = joined
        return module

    def _join(self, parsed: Sequence[cst.Module], bounds: Sequence[int]) -> tuple[cst.Module, list[int]] | None:
        """The pieces as one module, and the line where each statement's code (leading lines included)
        begins; None when the pieces do not join into what parsing the whole would give."""
        first = parsed[0]
        indents = {piece.default_indent for piece in parsed if _has_block(piece)}
        if len(indents) > 1 or any(piece.default_newline != first.default_newline for piece in parsed):
            return None
        body: list[Statement] = []
        lines: list[int] = []
        joined: dict[int, tuple[Statement, Sequence[cst.EmptyLine], Statement]] = {}
        carried: Sequence[cst.EmptyLine] = ()
        for index, piece in enumerate(parsed):
            if len(piece.body) != 1 or (index and piece.header):
                return None
            statement = original = piece.body[0]
            if carried:
                kept = self._joined.get(id(original))
                if (kept is not None and kept[0] is original and len(kept[1]) == len(carried)
                        and all(map(operator.is_, kept[1], carried))):
                    statement = kept[2]
                else:
                    statement = original.with_changes(leading_lines=[*carried, *original.leading_lines])
                joined[id(original)] = (original, carried, statement)
            lines.append(bounds[index] + 1 - len(carried) if index else 1 + len(first.header))
            body.append(statement)
            carried = piece.footer
        self._joined = joined
        module = cst.Module(body=body, header=first.header, footer=parsed[-1].footer, encoding=first.encoding,
                            default_indent=indents.pop() if indents else first.default_indent,
                            default_newline=first.default_newline,
                            has_trailing_newline=parsed[-1].has_trailing_newline)
        return module, lines


def _statement_starts(text: str) -> list[int]:
    """First line of each top-level statement (its first decorator for a decorated definition)."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return []
    starts: list[int] = []
    for statement in tree.body:
        decorators = getattr(statement, "decorator_list", None)
        line = min([statement.lineno] + [d.lineno for d in decorators or ()])
        if not starts or line > starts[-1]:
            starts.append(line)
    return starts


def _has_block(module: cst.Module) -> bool:
    """Whether the piece has an indented block (libcst took its default indent from the first one)."""
    stack: list[cst.CSTNode] = list(module.body)
    while stack:
        node = stack.pop()
        if isinstance(node, cst.IndentedBlock):
            return True
        if isinstance(node, cst.BaseCompoundStatement) or isinstance(node, (cst.Else, cst.ExceptHandler,
                                                                            cst.ExceptStarHandler, cst.Finally,
                                                                            cst.MatchCase)):
            stack.extend(children(node))
    return False
