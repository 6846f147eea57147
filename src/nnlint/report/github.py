"""GitHub Actions workflow commands: each finding becomes an annotation on the pull request."""

from nnlint.diagnostics import Diagnostic, Severity

_LEVELS = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "notice"}


def escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def render(diagnostics: list[Diagnostic]) -> str:
    lines = []
    for d in diagnostics:
        # A notebook's annotation goes on the line of the .ipynb file that holds the source line.
        line, column, end_line, end_column = d.file_span or (d.line, d.column, d.end_line, d.end_column)
        title = f"{d.code} {d.name}" + (f" (cell {d.cell}, line {d.line})" if d.cell is not None else "")
        properties = ",".join(
            f"{key}={escape_property(str(value))}"
            for key, value in (
                ("file", d.path), ("line", line), ("col", column),
                ("endLine", end_line), ("endColumn", end_column), ("title", title),
            )
        )
        lines.append(f"::{_LEVELS[d.severity]} {properties}::{escape_data(d.message)}\n")
    return "".join(lines)
