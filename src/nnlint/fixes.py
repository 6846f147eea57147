"""Applying fixes to source text: the one place that turns `Edit` coordinates into string offsets."""

from __future__ import annotations

from collections.abc import Iterable

from nnlint.diagnostics import Applicability, Edit, Fix


class OverlappingEdits(ValueError):
    """Two edits touch the same text, so applying both would garble it."""


def _offsets(text: str) -> list[int]:
    """The offset at which each 1-based line starts (index 0 unused)."""
    starts = [0, 0]
    for index, char in enumerate(text):
        if char == "\n":
            starts.append(index + 1)
    return starts


def apply_edits(text: str, edits: Iterable[Edit]) -> str:
    """`text` with every edit applied; edits must not overlap."""
    starts = _offsets(text)

    def offset(line: int, column: int) -> int:
        return starts[line] + column - 1

    spans = sorted((offset(e.line, e.column), offset(e.end_line, e.end_column), e.content) for e in edits)
    for (_, end, _), (start, _, _) in zip(spans, spans[1:]):
        if start < end:
            raise OverlappingEdits("edits overlap")
    pieces, position = [], 0
    for start, end, content in spans:
        pieces += [text[position:start], content]
        position = end
    pieces.append(text[position:])
    return "".join(pieces)


def compatible_fixes(text: str, fixes: Iterable[Fix],
                     allowed: frozenset[Applicability] = frozenset({Applicability.SAFE})) -> list[Fix]:
    """The allowed fixes that apply together, in order; a fix overlapping one already taken is skipped whole."""
    taken: list[Fix] = []
    for fix in fixes:
        if fix.applicability not in allowed:
            continue
        try:
            apply_edits(text, [edit for f in [*taken, fix] for edit in f.edits])
        except OverlappingEdits:
            continue
        taken.append(fix)
    return taken


def apply_fixes(text: str, fixes: Iterable[Fix], allowed: frozenset[Applicability] = frozenset({Applicability.SAFE})
                ) -> str:
    """`text` with the allowed fixes applied; a fix that overlaps one already taken is skipped whole."""
    return apply_edits(text, [edit for fix in compatible_fixes(text, fixes, allowed) for edit in fix.edits])
