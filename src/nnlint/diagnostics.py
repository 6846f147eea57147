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
    def parse(cls, text: str) -> "Severity":
        try:
            return cls[text.upper()]
        except KeyError:
            raise ValueError(f"unknown severity {text!r} (expected error, warning or info)") from None


SOURCES = ("static", "trace", "run")


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

    def sort_key(self) -> tuple:
        return (self.path, self.line, self.column, self.code, self.end_line, self.end_column, self.message)

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
            "fix": None,
        }
