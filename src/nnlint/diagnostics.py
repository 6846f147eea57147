"""The one diagnostic model shared by every layer (static, trace, run) and every report."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Severity(enum.IntEnum):
    INFO = 0
    WARNING = 1
    ERROR = 2

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Severity:
        try:
            return cls[text.upper()]
        except KeyError:
            raise ValueError(f"unknown severity {text!r} (expected error, warning or info)") from None


class Applicability(str, enum.Enum):
    """How far a fix may be trusted (Ruff's levels)."""

    SAFE = "safe"  # keeps the program's meaning: applied by `--fix`
    UNSAFE = "unsafe"  # may change behaviour: applied only when asked for explicitly
    DISPLAY_ONLY = "display-only"  # a suggestion to show, never applied automatically


@dataclass(frozen=True)
class Edit:
    """Replace the text from (line, column) up to (end_line, end_column) with `content`.

    1-based lines and columns counted in code points, `end_column` exclusive: the same convention as
    `Diagnostic`, so an edit spanning a reported node has the diagnostic's own coordinates.
    """

    line: int
    column: int
    end_line: int
    end_column: int
    content: str

    def to_json(self) -> dict:
        return {"line": self.line, "column": self.column, "end_line": self.end_line,
                "end_column": self.end_column, "content": self.content}


@dataclass(frozen=True)
class Fix:
    """What to change to resolve one diagnostic: non-overlapping edits of the diagnostic's file."""

    message: str
    edits: tuple[Edit, ...]
    applicability: Applicability = Applicability.SAFE

    def to_json(self) -> dict:
        return {"message": self.message, "applicability": self.applicability.value,
                "edits": [e.to_json() for e in self.edits]}


@dataclass(frozen=True, order=False)
class Diagnostic:
    """One finding. Lines and columns are 1-based; `end_column` is exclusive."""

    code: str
    name: str
    message: str
    path: str
    line: int
    column: int
    end_line: int
    end_column: int
    severity: Severity
    source: str = "static"
    # Carried for reports (caret, fingerprint); not part of the JSON schema.
    line_text: str = field(default="", compare=False)
    fix: Fix | None = field(default=None, compare=False)
    # Notebooks: the lines and columns above are inside this cell (1-based, markdown cells counted),
    # and `file_span` is (line, column, end_line, end_column) in the .ipynb file itself.
    cell: int | None = None
    file_span: tuple[int, int, int, int] | None = field(default=None, compare=False)

    def sort_key(self) -> tuple:
        return (self.path, self.cell or 0, self.line, self.column, self.code, self.end_line, self.end_column,
                self.message)

    @property
    def where(self) -> str:
        """`line:column`, or `cell N:line:column` in a notebook."""
        return f"{self.line}:{self.column}" if self.cell is None else f"cell {self.cell}:{self.line}:{self.column}"

    def to_json(self) -> dict:
        return {
            "code": self.code,
            "name": self.name,
            "message": self.message,
            "path": self.path,
            "line": self.line,
            "column": self.column,
            "end_line": self.end_line,
            "end_column": self.end_column,
            "severity": self.severity.label,
            "source": self.source,
            "fix": self.fix.to_json() if self.fix else None,
        } | ({} if self.cell is None else {"cell": self.cell})
