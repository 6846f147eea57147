"""Reparsing an edited buffer gives the module (and the findings) a full parse gives."""

from __future__ import annotations

import random
from pathlib import Path

import libcst as cst
import pytest

from nnlint.engine import lint_text
from nnlint.registry import registry
from nnlint.reparse import Reparser
from nnlint.source import python_newlines

ROOT = Path(__file__).resolve().parents[1]
# Realistic scripts, and our own largest modules (decorators, classes, comments between definitions)
SOURCES = sorted(ROOT.glob("fixtures/**/*.py")) + [ROOT / "src" / "nnlint" / name for name in
                                                    ("static/flow.py", "server.py", "trace/runner.py")]
ALL_CODES = frozenset(registry())


def _edits(text: str, seed: int) -> list[str]:
    """A few versions of `text` as an editor produces them: a line typed, deleted, changed, indented."""
    rng = random.Random(seed)
    lines = text.splitlines(keepends=True)
    versions = []
    for _ in range(3):
        at = rng.randrange(len(lines) + 1)
        kind = rng.choice(["insert", "comment", "delete", "blank"])
        edited = list(lines)
        if kind == "insert":
            edited.insert(at, "EDITED = 1\n")
        elif kind == "comment":
            edited.insert(at, "# a comment typed here\n")
        elif kind == "blank":
            edited.insert(at, "\n")
        elif lines:
            del edited[min(at, len(lines) - 1)]
        versions.append("".join(edited))
    return versions


def _same_as_full_parse(reparser: Reparser, text: str) -> None:
    try:
        full = cst.parse_module(text)
    except cst.ParserSyntaxError:
        with pytest.raises(cst.ParserSyntaxError):
            reparser.parse(text)
        return
    module = reparser.parse(text)
    assert module.deep_equals(full)
    assert module.code == full.code


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_reparse_equals_full_parse_across_edits(path):
    text = python_newlines(path.read_text(encoding="utf-8"))
    reparser = Reparser()
    _same_as_full_parse(reparser, text)
    for version in _edits(text, seed=len(text)):
        if compile_ok(version):
            _same_as_full_parse(reparser, version)


def compile_ok(text: str) -> bool:
    try:
        compile(text, "<edit>", "exec", dont_inherit=True)
    except (SyntaxError, ValueError):
        return False
    return True


@pytest.mark.parametrize("text", [
    "import torch\n\n\n# about f\n@decorator\n# between\n@other(1)\ndef f():\n    return 1\n    # indented trailer\n\n# trailer\n",
    "def f():\n  return 1\n\ndef g():\n    return 2\n",  # two indents: libcst keeps the first as default
    "x = 1; y = 2\nif x:\n    pass\nelse:\n\tpass\n",
    "#!/usr/bin/env python\n# -*- coding: utf-8 -*-\n\"\"\"Doc.\"\"\"\n\nclass A:\n    x = 1\n\n\n\n",
    "a = 1\r\nb = 2\r\n\r\ndef f():\r\n    return a\r\n",
    "if x: y = 1\nelse:\n    y = 2\nz = [\n  1,\n]\n",
    "print(1)",  # no newline at the end
    "x = 1\n    \n",
    "",
    "import a\n\x0c\ndef f():\n    return 1\n# page\x0cbreak\nx = '\u2028'\ny = 2\n",  # no line ends to Python
    "a = 1\n\x0cb = 2\nc = '\x1c'\nd = 3",
    "x = 1\ry = 2\r\nz = 3\n",  # lone CR: parsed whole
])
def test_reparse_layouts(text):
    reparser = Reparser()
    _same_as_full_parse(reparser, text)
    _same_as_full_parse(reparser, "EDITED = 0\n" + text)


def test_unchanged_statements_are_reused_and_positions_match():
    text = (ROOT / "fixtures" / "buggy" / "cnn_classifier.py").read_text(encoding="utf-8")
    reparser = Reparser()
    first = reparser.parse(text)
    edited = text.replace("\n", "\nEDITED = 1\n", 1)
    second = reparser.parse(edited)
    reused = sum(any(a is b for a in first.body) for b in second.body)
    assert reused >= len(first.body) - 3  # the edited piece and its neighbour's leading lines are new
    assert reparser.statement_lines is not None
    full = lint_text(edited, "t.py", ALL_CODES).diagnostics
    assert full  # a buggy fixture
    assert lint_text(edited, "t.py", ALL_CODES, reparser=reparser).diagnostics == full


@pytest.mark.parametrize("name", ["cnn_classifier.py", "text_lstm.py", "loop_classifier.py", "tabular_mlp.py"])
def test_findings_with_reparser_equal_findings_without(name):
    text = (ROOT / "fixtures" / "buggy" / name).read_text(encoding="utf-8")
    reparser = Reparser()
    for version in [text, *_edits(text, seed=7)]:
        if compile_ok(version):
            expected = lint_text(version, name, ALL_CODES).diagnostics
            assert lint_text(version, name, ALL_CODES, reparser=reparser).diagnostics == expected


def test_positions_from_statement_lines_match_whole_module_positions():
    from nnlint.positions import locate
    from nnlint.tree import walk

    text = (ROOT / "fixtures" / "buggy" / "text_lstm.py").read_text(encoding="utf-8")
    reparser = Reparser()
    reparser.parse(text)
    module = reparser.parse("# edited\n" + text)
    nodes = [node for node in walk(module) if isinstance(node, (cst.Call, cst.Name, cst.FunctionDef))]
    assert len(nodes) > 100
    assert locate(module, nodes, reparser.statement_lines) == locate(module, nodes)
