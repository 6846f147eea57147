"""What tracing saw that is no finding of its own: facts carried back to make static findings exact."""

from __future__ import annotations

from dataclasses import dataclass

from nnlint.diagnostics import Diagnostic

Span = tuple[str, "int | None", int, int, int, int]  # path, cell, line, column, end_line, end_column


@dataclass(frozen=True)
class SoftmaxRank:
    """A softmax call, or an `nn.Softmax()` built, without `dim`, and the rank of an input it ran on:
    None when that rank was itself a guess (the traced input was synthesized). The span is the call's,
    in the coordinates diagnostics use (a notebook's: its cell's)."""

    path: str
    line: int
    column: int
    end_line: int
    end_column: int
    rank: int | None
    cell: int | None = None

    @property
    def span(self) -> Span:
        return (self.path, self.cell, self.line, self.column, self.end_line, self.end_column)

    def to_row(self) -> list:
        return [self.line, self.column, self.end_line, self.end_column, self.rank, self.cell]

    @classmethod
    def from_row(cls, row: list, path: str) -> SoftmaxRank:
        line, column, end_line, end_column, rank, cell = row
        return cls(path, line, column, end_line, end_column, rank, cell)


def span_of(diagnostic: Diagnostic) -> Span:
    d = diagnostic
    return (d.path, d.cell, d.line, d.column, d.end_line, d.end_column)
