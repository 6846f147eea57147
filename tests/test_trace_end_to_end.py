"""The whole tracing layer (discovery, sandboxed workers, analyzer) on the fixtures, as `nnlint check` runs it.

One `trace_files` call over all the files, on one pool shared by the module: a worker's torch import
is the expensive part. Buggy files must give exactly their trace markers, clean files none.
"""

from __future__ import annotations

import json
import os
import re

import pytest

pytest.importorskip("torch")

from conftest import FIXTURES, run_nnlint  # noqa: E402
from nnlint.trace.runner import TraceOptions, WorkerPool, trace_files  # noqa: E402

DEMOS = ("tabular_mlp", "cnn_classifier", "text_lstm", "lightning_module")
_EXPECT = re.compile(r"#.*\bexpect:\s*(?P<codes>NNL\d{3}(?:\s*,\s*NNL\d{3})*)")
_TRACE_CODE = re.compile(r"NNL7\d\d")
# NNL790 notes on these files, each with its reason: none is expected.
EXPECTED_NOT_TRACED: set[tuple[str, int]] = set()


def _files(kind: str) -> list:
    paths = sorted((FIXTURES / kind).glob("trace_*.py")) + [FIXTURES / kind / f"{d}.py" for d in DEMOS]
    return [(str(p), f"{kind}/{p.name}") for p in paths]


def markers(path: str) -> set[tuple[int, str]]:
    pairs = set()
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            match = _EXPECT.search(line)
            if match:
                pairs |= {(number, c) for c in _TRACE_CODE.findall(match.group("codes")) if c != "NNL790"}
    return pairs


@pytest.fixture(scope="module")
def traced():
    # The loading tests point workers at a stub analyzer; these need the real one.
    saved = os.environ.pop("NNLINT_TRACE_ANALYZER", None)
    files = _files("buggy") + _files("clean")
    try:
        with WorkerPool(TraceOptions(jobs=2)) as pool:
            diagnostics, notes = trace_files(files, TraceOptions(jobs=2, timeout=60), pool=pool)
    finally:
        if saved is not None:
            os.environ["NNLINT_TRACE_ANALYZER"] = saved
    return files, diagnostics, notes


def _found(diagnostics, display: str, *, codes=lambda c: c != "NNL790") -> set[tuple[int, str]]:
    return {(d.line, d.code) for d in diagnostics if d.path == display and codes(d.code)}


@pytest.mark.parametrize("kind", ["buggy", "clean"])
def test_trace_findings_equal_the_markers(traced, kind):
    files, diagnostics, notes = traced
    mismatches = {}
    for path, display in files:
        if display.startswith(kind):
            want = markers(path) if kind == "buggy" else set()
            got = _found(diagnostics, display)
            if got != want:
                mismatches[display] = {"missing": want - got, "unexpected": got - want}
    assert not mismatches, mismatches
    assert all(d.source == "trace" for d in diagnostics)


def test_every_demo_and_trace_fixture_model_was_traced(traced):
    files, diagnostics, notes = traced
    not_traced = {(d.path, d.line): d.message for d in diagnostics if d.code == "NNL790"}
    assert set(not_traced) == EXPECTED_NOT_TRACED, not_traced
    assert any("traced via fx" in n for n in notes) and any("traced via eager" in n for n in notes)


def test_findings_are_reported_once(traced):
    _, diagnostics, _ = traced
    keys = [(d.path, d.line, d.code) for d in diagnostics]
    assert len(keys) == len(set(keys))


def test_cli_reports_trace_findings_and_static_only_turns_them_off():
    path = FIXTURES / "buggy" / "trace_broadcast.py"
    line = next(n for n, c in markers(str(path)))
    result = run_nnlint("check", "--format", "json", path)
    diagnostics = json.loads(result.stdout)
    traced = [d for d in diagnostics if d.get("source") == "trace"]
    assert [(d["code"], d["line"]) for d in traced] == [("NNL701", line)], result.stdout + result.stderr

    static = run_nnlint("check", "--format", "json", "--static-only", path)
    assert [d for d in json.loads(static.stdout) if d.get("source") == "trace"] == []
