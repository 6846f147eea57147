"""Output formats, one module each. Every format renders the same sorted diagnostics."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace

from nnlint.diagnostics import Diagnostic, Severity

FORMATS = ("text", "concise", "json", "github", "sarif")


@dataclass
class Summary:
    files_checked: int
    elapsed: float
    suppressed: list[Diagnostic] = field(default_factory=list)

    @staticmethod
    def counts(diagnostics: list[Diagnostic]) -> Counter:
        return Counter(d.severity for d in diagnostics)


def readable(text: str) -> str:
    """`text` with the bytes of a non-UTF-8 file name (surrogate escapes) written as \\xNN."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return text


def _readable(diagnostic: Diagnostic) -> Diagnostic:
    path, message = readable(diagnostic.path), readable(diagnostic.message)
    if path is diagnostic.path and message is diagnostic.message:
        return diagnostic
    return replace(diagnostic, path=path, message=message)


def render(fmt: str, diagnostics: list[Diagnostic], summary: Summary, color: bool) -> str:
    """The report as text. `diagnostics` must already be sorted.

    SARIF gets the file names as they are (its URIs percent-encode the raw bytes); the other formats
    write undecodable bytes of a file name as \\xNN, so JSON stays valid and every report prints.
    """
    if fmt != "sarif":
        diagnostics = [_readable(d) for d in diagnostics]
    if fmt == "text":
        from nnlint.report import text

        return text.render(diagnostics, summary, color)
    if fmt == "concise":
        from nnlint.report import concise

        return concise.render(diagnostics)
    if fmt == "json":
        from nnlint.report import json

        return json.render(diagnostics)
    if fmt == "github":
        from nnlint.report import github

        return github.render(diagnostics)
    if fmt == "sarif":
        from nnlint.report import sarif

        return sarif.render(diagnostics)
    raise ValueError(f"unknown format {fmt!r}")


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


SEVERITY_ORDER = (Severity.ERROR, Severity.WARNING, Severity.INFO)
