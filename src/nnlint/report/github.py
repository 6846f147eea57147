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
        properties = ",".join(
            f"{key}={escape_property(str(value))}"
            for key, value in (
                ("file", d.path), ("line", d.line), ("col", d.column),
                ("endLine", d.end_line), ("endColumn", d.end_column), ("title", f"{d.code} {d.name}"),
            )
        )
        lines.append(f"::{_LEVELS[d.severity]} {properties}::{escape_data(d.message)}\n")
    return "".join(lines)
