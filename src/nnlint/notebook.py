"""Jupyter notebooks: code cells joined into one module for the rules, positions mapped back, edits written back.

The rules see one Python module: every code cell in order, one after the other. IPython syntax that is
not Python (`%line` and `%%cell` magics, `!shell` lines, `name?` help) is masked by `pass` at the same
indentation, so line and column numbers stay those of the cell. A cell that does not parse on its own
is blanked out and reported, so one broken cell does not hide the findings of the others.

Positions go back three ways: (cell, line, column) for the human formats and JSON, the line and
column inside the .ipynb file itself for SARIF and GitHub annotations (found by scanning the raw JSON
text, so a finding lands on the very line of the source string), and fixes are written back by
replacing only the `source` values of the changed cells in the raw text: outputs, metadata and the
file's own formatting stay byte for byte what they were.
"""

from __future__ import annotations

import ast
import bisect
import io
import json
import re
import tokenize
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from nnlint.diagnostics import Diagnostic
from nnlint.source import read_bytes

SUFFIX = ".ipynb"

# Cell magics whose body is Python run by IPython (timed, captured, profiled): only the magic line is masked.
PYTHON_CELL_MAGICS = frozenset({"time", "timeit", "capture", "prun", "debug", "python", "python3", "pypy"})

# `%magic`, `!shell`, `?name`, `name?`, `x = %magic`, `files = !ls`: never Python at the start of a line.
_MAGIC_LINE = re.compile(r"\s*(?:%|!(?!=)|\?|[\w.\[\]]+\?{1,2}\s*$|[\w.,\s\[\]()]+=\s*(?:%|!(?!=)))")
# Each cell is compiled on its own, so a later cell may start with one; the joined module may not.
_FUTURE_LINE = re.compile(r"\s*from\s+__future__\s+import\s+[\w\s,]+$")
_TOKEN = re.compile(r'[ \t\n\r]*(?:("[^"\\]*(?:\\.[^"\\]*)*")|([{}\[\],:])|(-?[0-9][0-9.eE+-]*|true|false|null))',
                    re.S)
_SKIPPED = frozenset({"outputs", "metadata", "attachments"})  # never needed, often large
_DECODER = json.JSONDecoder()
_ESCAPES = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", '"': '"', "\\": "\\", "/": "/"}


class NotebookError(Exception):
    """The file is not a notebook nnlint can read (NNL002): `line` and `column` in the file."""

    def __init__(self, message: str, line: int = 1, column: int = 1):
        super().__init__(message)
        self.message, self.line, self.column = message, line, column


class _Array(list):
    """A JSON array in the raw text: `start` at its `[`, `end` after its `]`."""

    start = end = 0


@dataclass(frozen=True)
class _Literal:
    """A JSON string in the raw text: `start` at its opening quote, `end` after its closing one."""

    start: int
    end: int


class _Scanner:
    """Just enough of a JSON parser to know where each string literal sits (input already validated)."""

    def __init__(self, text: str):
        self.text = text
        self.pos = 0

    def _value_start(self) -> int:
        while self.text[self.pos] in " \t\n\r":
            self.pos += 1
        return self.pos

    def _next(self) -> re.Match:
        match = _TOKEN.match(self.text, self.pos)
        if match is None:
            raise NotebookError(f"not a Jupyter notebook: unreadable JSON at offset {self.pos}")
        self.pos = match.end()
        return match

    def value(self, match: re.Match | None = None):
        match = match or self._next()
        string, punct, scalar = match.groups()
        if string is not None:
            return _Literal(match.start(1), match.end(1))
        if scalar is not None:
            return json.loads(scalar)
        if punct == "[":
            items = _Array()
            items.start = match.start(2)
            while True:
                match = self._next()
                if match.group(2) == "]":
                    items.end = match.end(2)
                    return items
                if match.group(2) != ",":
                    items.append(self.value(match))
        members: dict = {}
        while True:
            match = self._next()
            if match.group(2) == "}":
                return members
            if match.group(2) == ",":
                continue
            key = json.loads(match.group(1))
            self._next()  # the colon
            if key in _SKIPPED:  # outputs can be megabytes: let the C decoder step over them
                self.pos = _DECODER.raw_decode(self.text, self._value_start())[1]
                continue
            members[key] = self.value()


def _decode(text: str, literal: _Literal) -> tuple[str, list[int]]:
    """The string's value and, for each of its characters, the raw offset where it is written."""
    chars: list[str] = []
    offsets: list[int] = []
    i, end = literal.start + 1, literal.end - 1
    while i < end:
        ch = text[i]
        if ch != "\\":
            chars.append(ch)
            offsets.append(i)
            i += 1
            continue
        kind = text[i + 1]
        if kind != "u":
            chars.append(_ESCAPES[kind])
            offsets.append(i)
            i += 2
            continue
        code = int(text[i + 2:i + 6], 16)
        width = 6
        if 0xD800 <= code < 0xDC00 and text[i + 6:i + 8] == "\\u":
            low = int(text[i + 8:i + 12], 16)
            if 0xDC00 <= low < 0xE000:
                code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                width = 12
        chars.append(chr(code))
        offsets.append(i)
        i += width
    return "".join(chars), offsets


@dataclass
class Cell:
    number: int  # 1-based position among all cells, markdown included: what a reader counts
    lines: list[str]  # the source as written, without line ends
    first_line: int  # where the cell starts in the joined module (1-based)
    literals: list[_Literal]  # the raw JSON string(s) holding the source
    span: tuple[int, int]  # raw offsets of the whole `source` value
    ends_with_newline: bool


@dataclass
class BrokenCell:
    cell: Cell
    line: int  # in the joined module
    column: int
    message: str


@dataclass
class Notebook:
    text: str  # the raw file
    cells: list[Cell]  # code cells only
    source: str  # the joined module the rules see
    broken: list[BrokenCell] = field(default_factory=list)
    _raw_lines: list[int] = field(default_factory=list, repr=False)
    _offsets: dict[int, tuple[str, list[int]]] = field(default_factory=dict, repr=False)

    def cell_at(self, line: int) -> Cell:
        """The cell holding line `line` of the joined module (the last one past the end)."""
        index = bisect.bisect_right([c.first_line for c in self.cells], line) - 1
        return self.cells[max(index, 0)]

    def locate(self, line: int, column: int) -> tuple[int, int, int]:
        """(cell number, line in the cell, column) of a joined-module position."""
        if not self.cells:
            return 1, line, column
        cell = self.cell_at(line)
        return cell.number, line - cell.first_line + 1, column

    def line_text(self, line: int) -> str:
        """The cell's own text of a joined-module line (magics unmasked)."""
        if not self.cells:
            return ""
        cell = self.cell_at(line)
        index = line - cell.first_line
        return cell.lines[index].rstrip("\r") if 0 <= index < len(cell.lines) else ""

    def file_position(self, line: int, column: int) -> tuple[int, int]:
        """Line and column (1-based, code points) in the .ipynb file of a joined-module position."""
        if not self.cells:
            return 1, 1
        cell = self.cell_at(line)
        index = min(max(line - cell.first_line, 0), max(len(cell.lines) - 1, 0))
        offset = sum(len(text) + 1 for text in cell.lines[:index]) + max(column - 1, 0)
        raw = self._raw_offset(cell, offset)
        if not self._raw_lines:
            self._raw_lines = [0] + [m.end() for m in re.finditer("\n", self.text)]
        raw_line = bisect.bisect_right(self._raw_lines, raw)
        return raw_line, raw - self._raw_lines[raw_line - 1] + 1

    def to_cell(self, d: Diagnostic) -> Diagnostic:
        """A diagnostic on the joined module, placed in its cell and in the .ipynb file."""
        cell, line, column = self.locate(d.line, d.column)
        end_cell, end_line, end_column = self.locate(d.end_line, d.end_column)
        if end_cell != cell:  # a span running into the next cell ends with its own cell
            last = self.cell_at(d.line)
            end_line, end_column = len(last.lines), len(last.lines[-1]) + 1 if last.lines else 1
        span = (*self.file_position(d.line, d.column), *self.file_position(d.end_line, d.end_column))
        first = self.cell_at(d.line).first_line
        fix = d.fix and replace(d.fix, edits=tuple(  # in the cell's coordinates, like the finding's
            replace(e, line=e.line - first + 1, end_line=e.end_line - first + 1) for e in d.fix.edits))
        return replace(d, line=line, column=column, end_line=end_line, end_column=end_column, cell=cell,
                       file_span=span, line_text=self.line_text(d.line), fix=fix)

    def _raw_offset(self, cell: Cell, offset: int) -> int:
        for literal in cell.literals:
            if literal.start not in self._offsets:
                self._offsets[literal.start] = _decode(self.text, literal)
            value, offsets = self._offsets[literal.start]
            if offset < len(value):
                return offsets[offset]
            offset -= len(value)
        return cell.literals[-1].end - 1 if cell.literals else cell.span[0]


def _source_text(value) -> str:
    if isinstance(value, list):
        return "".join(item for item in value if isinstance(item, str))
    return value if isinstance(value, str) else ""


def _cells(document, scanned) -> list[tuple[int, dict, dict]]:
    """(number, parsed cell, scanned cell) for every cell; nbformat 4 and the older worksheets layout."""
    if not isinstance(document, dict):
        raise NotebookError("not a Jupyter notebook: the top level is not a JSON object")
    if isinstance(document.get("cells"), list):
        pairs: Iterable[tuple[Any, Any]] = zip(document["cells"], scanned["cells"])
    elif isinstance(document.get("worksheets"), list):
        pairs = ((cell, raw) for sheet, raw_sheet in zip(document["worksheets"], scanned["worksheets"])
                 if isinstance(sheet, dict) and isinstance(sheet.get("cells"), list)
                 for cell, raw in zip(sheet["cells"], raw_sheet["cells"]))
    else:
        raise NotebookError("not a Jupyter notebook: no 'cells' list")
    return [(number, cell, raw) for number, (cell, raw) in enumerate(pairs, 1) if isinstance(cell, dict)]


def _mask(lines: list[str]) -> list[str]:
    """The cell's lines with IPython-only syntax and `from __future__` imports replaced by `pass` (or
    blanked for non-Python cell magics)."""
    first = next((i for i, text in enumerate(lines) if text.strip()), None)
    if first is not None and lines[first].lstrip().startswith("%%"):
        name = lines[first].strip()[2:].split(maxsplit=1)
        if not name or name[0] not in PYTHON_CELL_MAGICS:
            return [""] * len(lines)
    masked = [_pass(text) if _MAGIC_LINE.match(text) or _FUTURE_LINE.match(text) else text for text in lines]
    if masked == lines:
        return lines
    # A line that starts inside a bracket or a multi-line string is not a magic: restore it.
    for index in _continuation_lines(masked):
        masked[index] = lines[index]
    return masked


def _pass(text: str) -> str:
    return text[:len(text) - len(text.lstrip())] + "pass"


def _continuation_lines(lines: list[str]) -> set[int]:
    inside: set[int] = set()
    depth, last_line = 0, 0
    try:
        for token in tokenize.generate_tokens(io.StringIO("\n".join(lines) + "\n").readline):
            row = token.start[0]
            if row > last_line and depth > 0:
                inside.update(range(last_line, row))  # 0-based indices of the lines after last_line
            if token.type == tokenize.STRING or getattr(tokenize, "FSTRING_MIDDLE", None) == token.type:
                inside.update(range(token.start[0], token.end[0]))
            if token.type == tokenize.OP:
                depth += token.string in "([{"
                depth -= token.string in ")]}"
                depth = max(depth, 0)
            last_line = max(last_line, token.end[0])
    except (tokenize.TokenError, SyntaxError, IndentationError):
        pass
    return inside


def _syntax_error(text: str) -> tuple[int, int, str] | None:
    try:
        compile(text, "<cell>", "exec", ast.PyCF_ONLY_AST | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    except SyntaxError as error:
        return error.lineno or 1, max(error.offset or 1, 1), f"cannot parse this cell: {error.msg}"
    except (RecursionError, MemoryError, ValueError) as error:
        return 1, 1, f"cannot parse this cell: {type(error).__name__}"
    return None


def read(path: str, data: bytes | None = None) -> str:
    """The notebook's text (from `data` when already read): JSON files are UTF-8 (RFC 8259), whatever the locale."""
    data = read_bytes(path) if data is None else data
    try:
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        raise NotebookError(f"not a valid notebook: byte 0x{data[exc.start]:02x} is not UTF-8",
                            data.count(b"\n", 0, exc.start) + 1, 1) from None


def as_ipynb(sources: list[str]) -> bytes:
    """A notebook file made of these code cells (an editor's open notebook, checked as its file would be)."""
    cells: list[dict] = [{"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [],
                          "source": source} for source in sources]
    return json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}).encode("utf-8")


def load(text: str) -> Notebook:
    """Read a notebook's raw JSON text; raises NotebookError when it is not one."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise NotebookError(f"not a valid notebook: invalid JSON: {exc.msg}", exc.lineno, exc.colno) from None
    except RecursionError:
        raise NotebookError("not a valid notebook: JSON nested too deeply") from None
    scanned = _Scanner(text).value()
    cells: list[Cell] = []
    joined: list[str] = []
    broken: list[BrokenCell] = []
    for number, cell, raw in _cells(document, scanned):
        if cell.get("cell_type") != "code":
            continue
        key = "source" if "source" in cell else "input"
        value, raw_value = cell.get(key, ""), raw.get(key)
        source = _source_text(value)
        lines = source.split("\n")
        ends_with_newline = source.endswith("\n")
        if ends_with_newline or not source:
            lines.pop()
        if isinstance(raw_value, _Literal):
            literals, span = [raw_value], (raw_value.start, raw_value.end)
        elif isinstance(raw_value, _Array):
            literals = [item for item in raw_value if isinstance(item, _Literal)]
            span = (raw_value.start, raw_value.end)
        else:
            literals, span = [], (0, 0)
        cells.append(Cell(number, lines, len(joined) + 1, literals, span, ends_with_newline))
        joined.extend(_mask(lines))
    if _syntax_error("".join(line + "\n" for line in joined)) is not None:
        broken = _blank_broken_cells(cells, joined)
    return Notebook(text, cells, "".join(line + "\n" for line in joined), broken)


def _blank_broken_cells(cells: list[Cell], joined: list[str]) -> list[BrokenCell]:
    """Find the cells that do not parse on their own, report them and blank them out in `joined`."""
    broken = []
    for cell in cells:
        start, stop = cell.first_line - 1, cell.first_line - 1 + len(cell.lines)
        error = _syntax_error("".join(line + "\n" for line in joined[start:stop]))
        if error is not None:
            line, column, message = error
            broken.append(BrokenCell(cell, cell.first_line + line - 1, column, message))
            joined[start:stop] = [""] * (stop - start)
    return broken


# --- writing fixes back ---------------------------------------------------------------------------


def apply_edits(text: str, edits) -> str:
    """The raw notebook `text` with `edits` applied: each has line, column, end_line, end_column (1-based,
    end exclusive, in joined-module coordinates) and content. Only the `source` of the changed cells is
    rewritten; an edit that crosses a cell boundary or touches a masked line is skipped."""
    notebook = load(text)
    by_cell: dict[int, list] = {}
    for edit in edits:
        cell = notebook.cell_at(edit.line)
        if notebook.cell_at(edit.end_line) is not cell or edit.line < cell.first_line:
            continue
        if cell in (b.cell for b in notebook.broken):
            continue
        by_cell.setdefault(id(cell), []).append(edit)
    masked = notebook.source.split("\n")
    replacements = []
    for cell in notebook.cells:
        edits_here = by_cell.get(id(cell))
        if not edits_here:
            continue
        source = "\n".join(cell.lines) + ("\n" if cell.ends_with_newline else "")
        starts = [0]
        for text_line in cell.lines:
            starts.append(starts[-1] + len(text_line) + 1)

        def offset(line: int, column: int, cell=cell, source=source, starts=starts) -> int:
            index = line - cell.first_line
            if index >= len(cell.lines):
                return len(source)
            return min(starts[index] + column - 1, starts[index] + len(cell.lines[index]) + 1, len(source))

        applied, last_start = [], None
        for edit in sorted(edits_here, key=lambda e: (e.line, e.column), reverse=True):
            touched = range(edit.line - 1, min(edit.end_line, len(masked)))
            if any(masked[i] != notebook.line_text(i + 1) for i in touched):
                continue  # a masked magic: its text is not what the rules saw
            start, end = offset(edit.line, edit.column), offset(edit.end_line, edit.end_column)
            if last_start is not None and end > last_start:
                continue  # overlaps an edit already applied
            source = source[:start] + edit.content + source[end:]
            applied.append(edit)
            last_start = start
        if applied:
            replacements.append((cell, source))
    for cell, source in sorted(replacements, key=lambda r: r[0].span[0], reverse=True):
        start, end = cell.span
        text = text[:start] + _serialize(text, cell, source) + text[end:]
    return text


def _serialize(text: str, cell: Cell, source: str) -> str:
    """The new `source` value, written the way this file writes it (list of lines or one string)."""
    ascii_only = text.isascii()
    if text[cell.span[0]] == '"':  # one string
        return json.dumps(source, ensure_ascii=ascii_only)
    pieces = source.splitlines(keepends=True)
    if not pieces:
        return "[]"
    first = cell.literals[0].start if cell.literals else cell.span[0] + 1
    separator = text[cell.span[0] + 1:first]  # newline and indentation before the first line
    closing = text[cell.literals[-1].end:cell.span[1] - 1] if cell.literals else ""
    between = "," + separator if separator else ", "
    body = between.join(json.dumps(piece, ensure_ascii=ascii_only) for piece in pieces)
    return "[" + separator + body + closing + "]"
