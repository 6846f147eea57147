"""`# noqa` comments: `# noqa` silences every code on its line, `# noqa: NNL101, NNL302` those codes."""

from __future__ import annotations

import re

_NOQA = re.compile(r"#\s*noqa(?::\s*(?P<codes>[A-Z]+[0-9]+(?:\s*,\s*[A-Z]+[0-9]+)*))?", re.IGNORECASE)


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
