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


# --- encodings and positions ------------------------------------------------------------------

SOFTMAX_LINES = ["import torch", "import torch.nn.functional as F", "", "x = torch.randn(3, 4)",
                 "probs = F.softmax(x)", "y = 1"]


def _python_position(data: bytes) -> tuple[int, int]:
    """Where Python's own tokenizer and parser put the softmax call (1-based line and column)."""
    import ast

    call = next(n for n in ast.walk(ast.parse(data)) if isinstance(n, ast.Call) and getattr(n.func, "attr", "") == "softmax")
    return call.lineno, call.col_offset + 1


@pytest.mark.parametrize("ending", ["\n", "\r\n", "\r", "mixed"])
def test_line_endings_give_pythons_line_and_column(cli, project, ending):
    if ending == "mixed":
        separators = ["\r\n", "\n", "\r", "\r", "\r\n", "\n"]
        text = "".join(line + sep for line, sep in zip(SOFTMAX_LINES, separators))
    else:
        text = ending.join(SOFTMAX_LINES) + ending
    data = text.encode()
    project("endings.py", data)
    _, items = static_json(cli, "endings.py")
    assert [(i["code"], i["line"], i["column"]) for i in items] == [("NNL302", *_python_position(data))]
    assert (items[0]["line"], items[0]["column"]) == (5, 9)
    text_report = cli("check", "--static-only", "endings.py").stdout
    assert "probs = F.softmax(x)" in text_report and "import torch" not in text_report


def test_bom_is_tolerated(cli, project):
    project("bom.py", "\ufeff" + "\n".join(SOFTMAX_LINES) + "\n")
    _, items = static_json(cli, "bom.py")
    assert [(i["code"], i["line"], i["column"]) for i in items] == [("NNL302", 5, 9)]


def test_deeply_nested_valid_code_keeps_its_own_spans(cli, project):
    # Locating nodes recurses per nesting level; positions must not collapse to 1:1.
    project("chain.py", "import torch.nn.functional as F\nx = F.softmax(a" + ".b" * 2000 + ")\n")
    project("calls.py", "import torch.nn.functional as F\nx = " + "F.softmax(" * 150 + "y" + ")" * 150 + "\n")
    _, items = static_json(cli, "chain.py", "calls.py")
    chain = [(i["line"], i["column"]) for i in items if i["path"] == "chain.py"]
    assert chain == [(2, 5)]
    calls = [(i["line"], i["column"], i["end_column"]) for i in items if i["path"] == "calls.py"]
    assert len(calls) == 150 and len(set(calls)) == 150
    assert calls[0] == (2, 5, 5 + len("F.softmax(") * 150 + 1 + 150)


NON_UTF8_NAME = b"mod\xff\xfe.py"


@pytest.mark.parametrize("fmt", ["text", "concise", "json", "github", "sarif"])
def test_file_name_that_is_not_utf8(project, fmt):
    import os

    os.chdir(project.root)
    with open(NON_UTF8_NAME, "wb") as handle:
        handle.write(b"import torch.nn.functional as F\np = F.softmax(x)\n")
    done = run_nnlint("check", "--static-only", "--format", fmt, ".", cwd=project.root)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    if fmt == "json":
        assert json.loads(done.stdout)[0]["path"] == "mod\\xff\\xfe.py"
    elif fmt == "sarif":
        location = json.loads(done.stdout)["runs"][0]["results"][0]["locations"][0]["physicalLocation"]
        assert location["artifactLocation"]["uri"] == "mod%FF%FE.py"
    else:
        assert "mod\\xff\\xfe.py" in done.stdout
    report = project.root / "report.out"
    written = run_nnlint("check", "--static-only", "--format", fmt, "-o", str(report), ".", cwd=project.root)
    assert written.returncode == 1 and "Traceback" not in written.stderr, written.stderr
    assert report.stat().st_size > 0
    if fmt in ("json", "sarif"):
        json.loads(report.read_text(encoding="utf-8"))


# --- a run is never lost ----------------------------------------------------------------------

@pytest.fixture
def segfaulting_rule():
    """A rule whose process dies of SIGSEGV on files that call `crash_here()`; registered for one test."""
    import libcst as cst

    from nnlint.diagnostics import Severity
    from nnlint.rule import _REGISTRY, StaticRule

    class SegfaultingRule(StaticRule):
        """Dies on purpose.

        Test-only.
        """

        code = "NNL098"
        name = "segfaulting-rule"
        severity = Severity.WARNING

        def visit_Call(self, node: cst.Call) -> None:
            if isinstance(node.func, cst.Name) and node.func.value == "crash_here":
                import os
                import signal

                os.kill(os.getpid(), signal.SIGSEGV)

    yield SegfaultingRule
    _REGISTRY.pop("NNL098", None)


@pytest.mark.parametrize("fmt", ["json", "sarif"])
def test_segfault_in_a_pool_worker_loses_one_file_not_the_run(cli, project, segfaulting_rule, fmt):
    for number in range(40):
        project(f"f{number:02d}.py", "import torch.nn.functional as F\np = F.softmax(x)\n")
    project("f17.py", "crash_here()\n")
    report = project.root / "report.out"
    result = cli("check", "--static-only", "--jobs", "2", "--format", fmt, "-o", str(report), ".")
    assert result.exit_code == 2, result.output
    data = json.loads(report.read_text(encoding="utf-8"))
    if fmt == "sarif":
        items = [{"path": r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"], "code": r["ruleId"]}
                 for r in data["runs"][0]["results"]]
    else:
        items = data
    crashed = [i for i in items if i["code"] == "NNL003"]
    assert [i["path"] for i in crashed] == ["f17.py"]
    if fmt == "json":
        assert "SIGSEGV" in crashed[0]["message"]
    assert sorted(i["path"] for i in items if i["code"] == "NNL302") == [f"f{n:02d}.py" for n in range(40) if n != 17]


# --- bounds -----------------------------------------------------------------------------------

def _generated(size: int) -> str:
    return "import torch.nn.functional as F\np = F.softmax(x)\nTABLE = [\n" + "    1,\n" * (size // 7) + "]\n"


def test_file_above_max_file_size_is_skipped_with_a_note(cli, project):
    project("generated.py", _generated(3 * 1024**2))
    project("small.py", "import torch.nn.functional as F\np = F.softmax(x)\n")
    result, items = static_json(cli, ".")
    assert [(i["path"], i["code"], i["severity"]) for i in items] == [
        ("generated.py", "NNL005", "info"), ("small.py", "NNL302", "warning")]
    assert "max-file-size" in items[0]["message"] and len(items[0]["message"]) <= 200
    assert result.exit_code == 1


def test_max_file_size_from_config_and_cli(cli, project):
    project("pyproject.toml", "[tool.nnlint]\nmax-file-size = '10KB'\n")
    project("mid.py", _generated(20 * 1024))
    _, items = static_json(cli, "mid.py")
    assert [i["code"] for i in items] == ["NNL005"]
    _, items = static_json(cli, "mid.py", extra=("--max-file-size", "0"))
    assert [i["code"] for i in items] == ["NNL302"]
    result = cli("check", "--static-only", "--max-file-size", "lots", "mid.py")
    assert result.exit_code == 2 and "max-file-size" in result.output


def test_invalid_max_file_size_in_config(cli, project):
    project("pyproject.toml", "[tool.nnlint]\nmax-file-size = 'huge'\n")
    project("a.py", "x = 1\n")
    result = cli("check", "--static-only", "a.py")
    assert result.exit_code == 2 and "max-file-size" in result.output
