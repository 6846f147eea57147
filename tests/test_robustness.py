"""Hostile inputs: every file gets a diagnostic, the run is never lost, nothing is called clean wrongly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import expected_findings, run_nnlint

CORPUS = Path(__file__).resolve().parent / "robustness"
CORPUS_FILES = sorted(CORPUS.glob("*.py"))
ALL_CODES = frozenset(f"NNL{n:03d}" for n in range(1000))


def static_json(cli, *paths, extra=()):
    result = cli("check", "--static-only", "--format", "json", *extra, *map(str, paths))
    assert "Traceback" not in result.output
    return result, json.loads(result.stdout)


@pytest.mark.parametrize("path", CORPUS_FILES, ids=[p.name for p in CORPUS_FILES])
def test_corpus_file(cli, path):
    result, items = static_json(cli, path)
    assert sorted((i["line"], i["code"]) for i in items) == expected_findings(path, ALL_CODES)
    assert result.exit_code in (0, 1)


@pytest.mark.parametrize("opener, closer", [("(", ")"), ("[", "]"), ("f(", ")")])
def test_too_deep_nesting_is_rejected_like_python(cli, project, opener, closer):
    project("deep.py", "x = " + opener * 1000 + "1" + closer * 1000 + "\n")
    result, items = static_json(cli, "deep.py")
    assert [(i["code"], i["line"]) for i in items] == [("NNL001", 1)]
    assert "too many nested parentheses" in items[0]["message"]
    assert result.exit_code == 1


def test_nesting_that_segfaults_libcst_is_kept_away_from_it(project):
    # ~1,270 nested parentheses overflow libcst's native parser's stack (exit 139 before).
    project("deeper.py", "x = " + "(" * 1300 + "1" + ")" * 1300 + "\n")
    project("good.py", "import torch.nn.functional as F\np = F.softmax(x)\n")
    done = run_nnlint("check", "--static-only", "--format", "json", ".", cwd=project.root)
    assert done.returncode == 1, done.stderr
    assert [(i["path"], i["code"]) for i in json.loads(done.stdout)] == [("deeper.py", "NNL001"), ("good.py", "NNL302")]


@pytest.mark.parametrize("source", [
    "x = " + "not " * 5000 + "y\n",
    "x = " + "-" * 5000 + "1\n",
    "x = " + "+".join(["1"] * 5000) + "\n",
    "x = a" + ".b" * 5000 + "\n",
])
def test_expressions_python_cannot_compile_are_nnl001(cli, project, source):
    project("deep.py", source)
    _, items = static_json(cli, "deep.py")
    assert [i["code"] for i in items] == ["NNL001"]
    assert "nested too deeply" in items[0]["message"]


def test_deep_but_valid_nesting_is_checked_normally(cli, project):
    project("ok.py", "import torch.nn.functional as F\nx = " + "(" * 150 + "F.softmax(y)" + ")" * 150 + "\n")
    _, items = static_json(cli, "ok.py")
    assert [(i["code"], i["line"]) for i in items] == [("NNL302", 2)]
