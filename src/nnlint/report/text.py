"""The default human report: findings grouped by file, the source line with a caret under the span, a summary.

The layout is built once as styled segments; on a terminal rich renders them in colour, elsewhere
they are joined as plain text (and rich is never imported, which keeps pre-commit runs fast).
"""

from __future__ import annotations

import io
from itertools import groupby

from nnlint.diagnostics import Diagnostic, Severity
from nnlint.report import SEVERITY_ORDER, Summary, plural

Segment = tuple[str, str | None]
_STYLES = {Severity.ERROR: "bold red", Severity.WARNING: "yellow", Severity.INFO: "cyan"}


def _caret(d: Diagnostic) -> tuple[str, str]:
    text = d.line_text
    start = max(d.column - 1, 0)
    end = d.end_column - 1 if d.end_line == d.line else len(text.rstrip())
    end = max(end, start + 1)
    padding = "".join("\t" if ch == "\t" else " " for ch in text[:start])
    return padding, "^" * (end - start)


def _finding(d: Diagnostic) -> list[list[Segment]]:
    head = [
        (f"  {d.where} ".ljust(10), "dim"),
        (d.severity.label.ljust(9), _STYLES[d.severity]),
        (f"{d.code} ", "bold"),
        (f"{d.name}  ", "dim"),
        (d.message, None),
    ]
    lines = [head]
    if d.line_text.strip():
        gutter = f"{d.line:>8} | "
        padding, carets = _caret(d)
        lines.append([(gutter, "dim"), (d.line_text, None)])
        lines.append([(" " * 8 + " | ", "dim"), (padding, None), (carets, _STYLES[d.severity])])
    return lines


def _summary(diagnostics: list[Diagnostic], summary: Summary) -> list[Segment]:
    counts = Summary.counts(diagnostics)
    files_with = len({d.path for d in diagnostics})
    if diagnostics:
        found = ", ".join(
            plural(counts[s], s.label) if s != Severity.INFO else f"{counts[s]} info"
            for s in SEVERITY_ORDER if counts[s]
        )
        head: list[Segment] = [(f"Found {found}", "bold"), (f" in {plural(files_with, 'file')}", None)]
    else:
        head = [("No problems found", "bold green")]
    tail = f" ({plural(summary.files_checked, 'file')} checked in {summary.elapsed:.2f} s"
    if summary.suppressed:
        tail += f", {len(summary.suppressed)} suppressed by noqa"
    return head + [(tail + ").", None)]


def layout(diagnostics: list[Diagnostic], summary: Summary) -> list[list[Segment]]:
    lines: list[list[Segment]] = []
    for path, group in groupby(diagnostics, key=lambda d: d.path):
        lines.append([(path, "bold underline")])
        for d in group:
            lines += _finding(d)
        lines.append([])
    lines.append(_summary(diagnostics, summary))
    return lines


def render(diagnostics: list[Diagnostic], summary: Summary, color: bool) -> str:
    lines = layout(diagnostics, summary)
    if not color:
        return "".join("".join(text for text, _ in line) + "\n" for line in lines)
    from rich.console import Console
    from rich.text import Text

    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, soft_wrap=True, highlight=False)
    for line in lines:
        console.print(Text.assemble(*[(t, s or "") for t, s in line]))
    return buffer.getvalue()
