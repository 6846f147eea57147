"""Tracing, engineer A's half: discovery, safe slices, construction, inputs, sandboxed workers.

The analysis itself is replaced by `stub_analyze` below (the workers import this module for it), so
these tests pin down what reaches the analyzer: which model, built how, fed which shapes, on which
device. All tests share one pool of workers: importing torch is the expensive part.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from nnlint.trace.discover import discover
from nnlint.trace.inputs import SpecError, choose_sizes, parse_input, parse_spec
from nnlint.trace.slicing import slice_module

FIXTURES = Path(__file__).resolve().parent / "trace_fixtures"
HAS_TORCH = __import__("importlib").util.find_spec("torch") is not None


def stub_analyze(model, args, kwargs, source_file, *, fake=False, int_inputs=False, batch_axis=None):
    """Stands in for nnlint.trace.analyze.analyze_model: reports what it was given."""
    tensors = list(args) + list(kwargs.values())
    shapes = ";".join(f"{'x'.join(map(str, t.shape))}:{str(t.dtype).removeprefix('torch.')}" for t in tensors)
    findings = []
    if type(model).__name__ == "Classifier":  # a finding, to check its mapping to a diagnostic
        findings.append({"code": "NNL711", "message": "stub finding", "line": 20, "column": 9,
                         "end_line": 20, "end_column": 20})
    return {"path": "fake-stub" if fake else "stub", "why": "", "findings": findings,
            "notes": [f"shapes={shapes} device={tensors[0].device.type} int={int_inputs}"
                      f" training={model.training} file={os.path.basename(source_file)}"
                      f" constructed={getattr(model, 'constructed', '?')}"
                      f" threads={__import__('torch').get_num_threads()}"]}


# --- pure-Python parts: no worker needed -------------------------------------------------------

def test_parse_specs():
    assert str(parse_spec("float32[B,3,32,32]")) == "float32[B,3,32,32]"
    assert parse_spec("long[B, T]").is_int
    spec = parse_input({"pixels": "float32[B,10]", "tokens": "int64[B,T]"})
    assert [k for k, _ in spec.kwargs] == ["pixels", "tokens"]
    assert parse_input(["float32[B,6]", "int64[B]"]).config_value() == '["float32[B,6]", "int64[B]"]'
    for bad in ("float32(B,3)", "complex99[B]", "float32[B,3.5]"):
        with pytest.raises(SpecError):
            parse_spec(bad)


def test_sizes_are_distinct_primes_avoiding_parameter_dims():
    sizes = choose_sizes(["B", "T", "H", "W"], {784, 10, 64, 3}, spatial=("H", "W"))
    assert len(set(sizes.values())) == 4
    for size in sizes.values():
        assert all(dim % size for dim in (784, 10, 64, 3))
    assert choose_sizes(["B"], set(), batch=4)["B"] == 4


def test_slice_keeps_definitions_and_drops_programs():
    source = (FIXTURES / "safety" / "writes_marker.py").read_text()
    kept = slice_module(source).kept_lines
    lines = source.splitlines()
    kept_text = "\n".join("\n".join(lines[a - 1:b]) for a, b in kept)
    assert "class Tagger" in kept_text and "import torch.nn as nn" in kept_text
    assert "MARKER =" not in kept_text  # nothing kept references it
    assert "open(MARKER" not in kept_text and "data = open" not in kept_text
    source = (FIXTURES / "args" / "needs_literal.py").read_text()
    code = slice_module(source).compile("needs_literal.py")
    assert code.co_filename == "needs_literal.py"


def test_slice_keeps_transitive_assignments_and_roots():
    source = "A = 2\nB = A * 3\nX = run()\ndef f(n=B):\n    return X\nclass C:\n    k = B\nrun_training()\n"
    assert slice_module(source).kept_lines == [(1, 1), (2, 2), (6, 7)]  # f: nothing needs it
    assert slice_module(source, roots={"f"}).kept_lines == [(1, 1), (2, 2), (3, 3), (4, 5)]


def test_discover_models_hints_and_factories():
    found = discover((FIXTURES / "args" / "needs_literal.py").read_text())
    assert [c.name for c in found.models()] == ["Classifier"]
    assert found.instantiations["Classifier"][0]["args"] == [784, 10]
    assert found.instantiations["Classifier"][0]["kwargs"] == {"widths": [64, 32]}
    assert found.input_shapes["Classifier"] == [["float32[B,1,28,28]"]]
    factory = discover((FIXTURES / "args" / "factory.py").read_text())
    assert factory.factories == {"Backbone": ["tiny_backbone"]}
    inline = discover((FIXTURES / "inputs" / "inline_comment.py").read_text())
    assert inline.classes[0].input == ["float32[B,6]", "int64[B]"]
    local = discover("import torch.nn as nn\nclass A(nn.Module): pass\nclass B(A): pass\nclass C: pass\n")
    assert [c.name for c in local.models()] == ["A", "B"]


# --- through the workers -----------------------------------------------------------------------

pytestmark_torch = pytest.mark.skipif(not HAS_TORCH, reason="torch is not installed")

CONFIG = {
    "Encoder": {"args": [20, 16, 4, "tanh"]},
    "inputs/inline_comment.py::Fusion": {"input": {"pixels": "float32[B,10]", "tokens": "int64[B,T]"}},
}


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("trace")
    shutil.copytree(FIXTURES, root / "trace")
    return root / "trace"


@pytest.fixture(scope="module")
def pool():
    from nnlint.trace.workers import TraceOptions, WorkerPool

    saved = {k: os.environ.get(k) for k in ("NNLINT_TRACE_ANALYZER", "PYTHONPATH")}
    os.environ["NNLINT_TRACE_ANALYZER"] = "test_trace_loading:stub_analyze"
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(__file__).parent), saved["PYTHONPATH"]]))
    workers = WorkerPool(TraceOptions(jobs=2))
    try:
        yield workers
    finally:
        workers.close()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _files(root: Path, *subdirs: str) -> list[tuple[str, str]]:
    out = []
    for sub in subdirs:
        for path in sorted((root / sub).glob("*.py")):
            out.append((str(path), f"{sub}/{path.name}"))
    return out


@pytest.fixture(scope="module")
def traced(workspace, pool):
    from nnlint.trace.runner import TraceOptions, trace_files

    options = TraceOptions(jobs=2, timeout=60, models=CONFIG, config_root=str(workspace.parent), verbose=True)
    started = time.monotonic()
    diagnostics, notes = trace_files(_files(workspace, "safety", "args", "inputs"), options, pool=pool)
    return diagnostics, notes, time.monotonic() - started


def _note(notes, model: str) -> str:
    return "\n".join(n for n in notes if f": {model}: " in n)


@pytestmark_torch
def test_safety_fixtures_never_run_their_top_level(traced, workspace):
    diagnostics, notes, _ = traced
    for marker in ("TRAINED", "MARKER_WRITTEN", "MARKER_WRITTEN.data", "MAIN_RAN", "HELPER_RAN"):
        assert not (workspace / "safety" / marker).exists(), marker
    for model in ("Regressor", "Tagger", "Scorer", "Gate", "Echo", "Probe"):
        assert "traced via stub" in _note(notes, model), (model, notes)
    assert "shapes=5x24x12" not in _note(notes, "Echo")
    assert "training=False" in _note(notes, "Gate")  # models are analyzed in eval mode
    assert not [d for d in diagnostics if d.path.startswith("safety/")]


@pytestmark_torch
def test_constructor_arguments_from_config_literals_factory_and_synthesis(traced):
    _, notes, _ = traced
    assert "built with arguments from config" in _note(notes, "Encoder")
    assert "shapes=" in _note(notes, "Encoder") and "x20:float32" in _note(notes, "Encoder")
    literal = _note(notes, "Classifier")
    assert "built with call site Classifier(784, 10, widths=[64, 32]) at args/needs_literal.py:24" in literal
    assert "from literal example input in the file" in literal and "x1x28x28:float32" in literal
    # The call inside the factory is a call site, tried before the factory itself.
    assert "built with call site Backbone(Block, [1, 1]" in _note(notes, "Backbone")
    assert "built with TinyConfig with its defaults" in _note(notes, "TinyLM")  # the code's own config class
    assert "int=True" in _note(notes, "TinyLM")
    tagger = _note(notes, "SeqTagger")
    assert "built with synthesized arguments" in tagger and "first layer LSTM" in tagger
    assert "built with synthesized arguments" in _note(notes, "Audio")
    block = _note(notes, "Block")  # `Block(channels)`: no defaults, no literal call, so a guess
    assert "built with synthesized arguments (channels=16)" in block and "shapes=5x16x" in block


@pytestmark_torch
def test_inputs_from_comment_config_and_first_layer(traced):
    _, notes, _ = traced
    pair = _note(notes, "PairNet")
    assert "from inline comment" in pair and ":float32;" in pair and ":int64" in pair
    fusion = _note(notes, "Fusion")
    assert "from config" in fusion and "int=True" in fusion
    attend = _note(notes, "Attend")  # MultiheadAttention, batch_first=False: (T, B, E) three times
    shapes = attend.split("shapes=")[1].split()[0].split(";")
    assert len(shapes) == 3 and all(s.endswith("x12:float32") for s in shapes)
    seq = _note(notes, "SeqTagger").split("shapes=")[1].split()[0]
    t, b, _ = seq.split(":")[0].split("x")
    assert t != b  # free sizes are distinct, so a swapped batch dimension shows


@pytestmark_torch
def test_findings_become_trace_diagnostics_and_timing(traced):
    diagnostics, _, seconds = traced
    found = [d for d in diagnostics if d.code == "NNL711"]
    assert len(found) == 1
    d = found[0]
    assert (d.path, d.line, d.column, d.source, d.name) == ("args/needs_literal.py", 20, 9, "trace",
                                                            "misaligned-reshape")
    assert not [d for d in diagnostics if d.code == "NNL790"], [d.message for d in diagnostics]
    assert seconds < 60


@pytestmark_torch
def test_workers_use_one_thread_each(traced):
    # More intra-op threads than cores per worker made small models several times slower.
    threads = {n.rsplit("threads=", 1)[1] for n in traced[1] if "threads=" in n}
    assert threads == {"1"}


@pytestmark_torch
def test_fake_path_builds_on_meta(workspace, pool):
    from nnlint.trace.runner import TraceOptions, trace_files

    options = TraceOptions(jobs=2, fake=True, timeout=60, verbose=True)
    _, notes = trace_files(_files(workspace, "args")[:1], options, pool=pool)  # factory.py
    assert "traced via fake-stub" in _note(notes, "Backbone")
    assert "device=meta" in _note(notes, "Backbone")
    options = TraceOptions(jobs=2, fake_threshold=1000, timeout=60, verbose=True)
    _, notes = trace_files([(str(workspace / "safety" / "writes_marker.py"), "w.py")], options, pool=pool)
    assert "traced via fake-stub" in _note(notes, "Tagger")  # 1,668 parameters > 1,000


@pytestmark_torch
def test_unconstructible_model_gets_nnl790_with_config_snippet(workspace, pool):
    from nnlint.trace.runner import TraceOptions, trace_files

    snippets: list[str] = []
    diagnostics, _ = trace_files(_files(workspace, "args")[1:2], TraceOptions(jobs=2, timeout=60), pool=pool,
                                 snippets=snippets)
    (d,) = [d for d in diagnostics if d.code == "NNL790"]
    assert d.path == "args/needs_config.py" and d.line == 5 and d.severity.label == "info"
    assert "AssertionError" in d.message and "(constructor arguments)" in d.message
    # One line of at most 200 characters; the ready-to-paste table comes separately, after the report.
    assert "\n" not in d.message and len(d.message) <= 200 and "[tool.nnlint" not in d.message
    (snippet,) = snippets
    assert '[tool.nnlint.models."Encoder"]' in snippet and "squash = 0" in snippet


@pytestmark_torch
def test_limits_timeout_memory_crash_import_error(workspace, pool):
    from nnlint.trace.runner import TraceOptions, trace_files

    options = TraceOptions(jobs=2, timeout=6)
    started = time.monotonic()
    diagnostics, _ = trace_files(_files(workspace, "limits"), options, pool=pool)
    elapsed = time.monotonic() - started
    by_model = {d.message.split(" ", 1)[0]: d for d in diagnostics}
    assert set(by_model) == {"Forever", "Hog", "Segfault", "nnlint_no_such_package"}
    assert all(d.code == "NNL790" and "\n" not in d.message and len(d.message) <= 200 for d in diagnostics)
    assert "(timeout): gave up after 6 s" in by_model["Forever"].message
    assert "(memory)" in by_model["Hog"].message and "exceeded the memory cap (4.0 GiB)" in by_model["Hog"].message
    assert "(crash)" in by_model["Segfault"].message and "segmentation fault" in by_model["Segfault"].message
    # A missing package: once per file, at its import, naming the classes it blocks; PlainLayer traces.
    missing = by_model["nnlint_no_such_package"]
    assert missing.path == "limits/missing_package.py" and missing.line == 4
    assert "(missing package)" in missing.message
    assert "NeedsPackage, AlsoNeedsPackage were not traced" in missing.message
    assert elapsed < 6 + 60  # the timeout, plus restarting a worker after the crash


def test_sequence_hints():
    pytest.importorskip("torch")  # construction runs in the worker, where torch is imported
    from nnlint.trace.construction import sequence_hints

    assert sequence_hints({"dim": 64, "seq_len": 49, "num_patches": 196, "bias": True}) == [49, 196]


def test_imported_module_slices():
    # A module imported by a checked file keeps every function's globals: importers may call them.
    source = "M = make_typevar()\ndef wrap(fn):\n    def inner(x: M):\n        return fn(x)\n    return inner\n"
    assert slice_module(source).kept_lines == []
    assert slice_module(source, roots={"wrap"}).kept_lines == [(1, 1), (2, 5)]
    assert slice_module(source, roots={"*"}).kept_lines == [(1, 1), (2, 5)]
