"""Check the notebook layer on real notebooks: positions, write-back, findings, time.

    python bench/notebooks.py FOLDER [FOLDER ...]

For every *.ipynb under the folders:
- every non-blank code line, mapped to the .ipynb file, must decode from the raw JSON text at that place
  back to exactly the cell's line (what SARIF and GitHub annotations rely on);
- an edit appended to one line of every code cell that is not masked must leave the parsed JSON equal
  outside those cells' `source`, and the raw text byte-identical outside the rewritten `source` values;
- the static rules run (any NNL003 crash is listed); counts of NNL001 (cells that do not parse) and NNL002.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from nnlint.engine import FileTask, lint_file
from nnlint.notebook import NotebookError, apply_edits, load
from nnlint.registry import registry


@dataclass
class Edit:
    line: int
    column: int
    end_line: int
    end_column: int
    content: str


def _positions_ok(book) -> tuple[int, list[str]]:
    raw_lines = book.text.split("\n")
    checked, wrong = 0, []
    for cell in book.cells:
        for index, text in enumerate(cell.lines):
            if not text.strip():
                continue
            line = cell.first_line + index
            start_line, start = book.file_position(line, 1)
            end_line, end = book.file_position(line, len(text) + 1)
            checked += 1
            raw = raw_lines[start_line - 1][start - 1:end - 1] if start_line == end_line else None
            try:
                ok = raw is not None and json.loads('"' + raw + '"') == text.rstrip("\r")
            except json.JSONDecodeError:
                ok = False
            if not ok:
                wrong.append(f"cell {cell.number} line {index + 1}: {text[:60]!r} -> {raw!r}")
    return checked, wrong


def _without_sources(document: dict) -> dict:
    for cell in document.get("cells", []):
        cell.pop("source", None)
    return document


def _write_back_ok(book) -> tuple[int, list[str]]:
    masked = book.source.split("\n")
    edits = []
    for cell in book.cells:
        for index, text in enumerate(cell.lines):
            line = cell.first_line + index
            if text.strip() and masked[line - 1] == text and not text.rstrip().endswith("\\"):
                edits.append(Edit(line, len(text.rstrip("\r")) + 1, line, len(text.rstrip("\r")) + 1, "  # é edited"))
                break
    if not edits or "worksheets" in book.text[:2000]:
        return 0, []
    new = apply_edits(book.text, edits)
    problems = []
    if _without_sources(json.loads(new)) != _without_sources(json.loads(book.text)):
        problems.append("outputs or metadata changed")
    after = load(new)
    changed = {book.cell_at(e.line).number for e in edits} - {b.cell.number for b in book.broken}
    for old_cell, new_cell in zip(book.cells, after.cells):
        expected = [t + "  # é edited" if old_cell.number in changed and i == _edited_index(book, old_cell) else t
                    for i, t in enumerate(old_cell.lines)]
        if new_cell.lines != expected:
            problems.append(f"cell {old_cell.number}: source not as edited")
    # Raw bytes outside the `source` values are untouched.
    old_gaps = _gaps(book.text, book.cells)
    new_gaps = _gaps(new, after.cells)
    if old_gaps != new_gaps:
        problems.append("raw text outside the sources changed")
    return len(edits), problems


def _edited_index(book, cell) -> int:
    masked = book.source.split("\n")
    for index, text in enumerate(cell.lines):
        line = cell.first_line + index
        if text.strip() and masked[line - 1] == text and not text.rstrip().endswith("\\"):
            return index
    return -1


def _gaps(text: str, cells) -> list[str]:
    spans = sorted(c.span for c in cells if c.literals)
    edges = [0] + [x for span in spans for x in span] + [len(text)]
    return [text[edges[i]:edges[i + 1]] for i in range(0, len(edges), 2)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("folders", nargs="+", type=Path)
    args = parser.parse_args()
    paths = sorted(p for folder in args.folders for p in folder.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
    static = frozenset(code for code, rule in registry().items() if rule.layer in ("static", "tool"))
    lines = edits = 0
    problems: list[str] = []
    codes: Counter = Counter()
    load_time = lint_time = 0.0
    megabytes = 0.0
    for path in paths:
        text = path.read_text(encoding="utf-8", errors="replace")
        megabytes += len(text) / 1e6
        started = time.perf_counter()
        try:
            book = load(text)
        except NotebookError as exc:
            codes["NNL002"] += 1
            print(f"{path}: {exc.message}")
            continue
        load_time += time.perf_counter() - started
        checked, wrong = _positions_ok(book)
        lines += checked
        problems += [f"{path}: position {w}" for w in wrong]
        count, write_problems = _write_back_ok(book)
        edits += count
        problems += [f"{path}: write-back {w}" for w in write_problems]
        started = time.perf_counter()
        result = lint_file(FileTask(str(path), str(path), static))
        lint_time += time.perf_counter() - started
        codes.update(d.code for d in result.diagnostics)
        problems += [f"{path}: {d.where}: {d.message}" for d in result.diagnostics if d.code == "NNL003"]
    print(f"{len(paths)} notebooks, {megabytes:.1f} MB: loaded in {load_time:.2f} s, checked in {lint_time:.2f} s")
    print(f"{lines} code lines mapped to the .ipynb text; {edits} cells edited and written back")
    print("findings:", ", ".join(f"{code} {n}" for code, n in sorted(codes.items())) or "none")
    print(f"{len(problems)} problems")
    for problem in problems:
        print("  " + problem)


if __name__ == "__main__":
    main()
