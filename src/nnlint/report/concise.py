"""`path:line:col: CODE [severity] message`, one per line: the format quickfix lists and problem matchers parse."""

from nnlint.diagnostics import Diagnostic


def render(diagnostics: list[Diagnostic]) -> str:
    return "".join(
        f"{d.path}:{d.where}: {d.code} [{d.severity.label}] {d.message}\n" for d in diagnostics
    )
