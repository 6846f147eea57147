"""`# noqa` comments: `# noqa` silences every code on its line, `# noqa: NNL101, NNL302` those codes.

`settle` is where every layer's findings for a file pass, once: codes not enabled are dropped, the
reported line's text is attached, and noqa'd findings are set aside.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

from nnlint.diagnostics import Diagnostic

_NOQA = re.compile(r"#\s*noqa(?::\s*(?P<codes>[A-Z]+[0-9][A-Z0-9]*(?:\s*,\s*[A-Z]+[0-9][A-Z0-9]*)*))?", re.IGNORECASE)
ALWAYS_REPORTED = frozenset({"NNL003"})  # nnlint's own crashes: never filtered away


def suppressed_codes(line_text: str) -> frozenset[str] | None:
    """None when the line has no noqa; an empty set for a bare noqa (all codes); else the codes."""
    if "noqa" not in line_text.lower():
        return None
    match = _NOQA.search(line_text)
    if match is None:
        return None
    codes = match.group("codes")
    if not codes:
        return frozenset()
    return frozenset(code.strip().upper() for code in codes.split(","))


def is_suppressed(code: str, line_text: str) -> bool:
    codes = suppressed_codes(line_text)
    return codes is not None and (not codes or code in codes)


@dataclass
class FileResult:
    diagnostics: list[Diagnostic] = field(default_factory=list)
    suppressed: list[Diagnostic] = field(default_factory=list)


def settle(found: list[Diagnostic], enabled: frozenset[str], lines: list[str] | Callable[[], list[str]]
           ) -> FileResult:
    """Enabled findings of one file, split into reported and noqa'd, each with its line's text.

    `lines` is the file's text split at "\\n", or a function reading it (only called when needed).
    """
    result = FileResult()
    for diagnostic in found:
        if diagnostic.code not in enabled and diagnostic.code not in ALWAYS_REPORTED:
            continue
        if not diagnostic.line_text:
            if callable(lines):
                lines = lines()
            if 0 < diagnostic.line <= len(lines):
                diagnostic = replace(diagnostic, line_text=lines[diagnostic.line - 1].rstrip("\r"))
        if is_suppressed(diagnostic.code, diagnostic.line_text):
            result.suppressed.append(diagnostic)
        else:
            result.diagnostics.append(diagnostic)
    return result


@dataclass(frozen=True)
class NoqaProblem:
    line: int
    column: int  # 1-based, where the comment starts
    end_column: int  # exclusive
    message: str


def noqa_problems(lines: list[str], used: dict[int, set[str]], known: Iterable[str],
                  judged: Callable[[str], bool]) -> list[NoqaProblem]:
    """`# noqa: NNL...` codes that name no rule, or that silenced nothing on their line.

    Only nnlint's own codes are looked at: other linters share the comment. `judged(code)` says
    whether this run could have reported the code on the line (enabled, and its layer ran), so a
    noqa for a traced finding is never called unused by a static-only run.
    """
    known = set(known)
    problems = []
    for number, text in enumerate(lines, 1):
        if "noqa" not in text.lower():
            continue
        match = _NOQA.search(text)
        if match is None or not match.group("codes"):
            continue
        codes = [c.strip().upper() for c in match.group("codes").split(",")]
        start, end = match.start() + 1, match.end() + 1
        for code in codes:
            if not code.startswith("NNL"):
                continue
            if code not in known:
                close = difflib.get_close_matches(code, known, n=1, cutoff=0.8)
                hint = f" (did you mean {close[0]}?)" if close else ""
                problems.append(NoqaProblem(number, start, end, f"`# noqa` names {code}, which is no nnlint rule"
                                            f"{hint}: fix or remove the code"))
            elif code != "NNL004" and judged(code) and code not in used.get(number, ()):
                problems.append(NoqaProblem(number, start, end, f"`# noqa: {code}` silences nothing on this line: "
                                            f"remove {code} from the comment"))
    return problems
