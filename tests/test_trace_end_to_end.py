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

from conftest import FIXTURES, expected_findings, run_nnlint  # noqa: E402
from nnlint.registry import registry  # noqa: E402
from nnlint.trace.runner import TraceOptions, WorkerPool, trace_files  # noqa: E402

DEMOS = ("tabular_mlp", "cnn_classifier", "text_lstm", "lightning_module")
_TRACED = frozenset(code for code, rule in registry().items() if rule.layer == "trace") - {"NNL790"}
# NNL790 notes expected on the fixtures, with a word of the reason each must give.
EXPECTED_NOT_TRACED = {
    # its reshape(-1) bug breaks every batch size > 1, so each input tried fails; the note says what to configure
    ("buggy/shapes_patch_classifier.py", 23): "(input)",
}
# Fixtures that import packages which are not nnlint's dependencies (PIL, torchvision) are traced without
# them: their models do not use those imports, and the slice leaves out what the models do not need.


def _files(kind: str) -> list:
    return [(str(p), f"{kind}/{p.name}") for p in sorted((FIXTURES / kind).glob("*.py"))]


def markers(path: str) -> set[tuple[int, str]]:
    return set(expected_findings(path, _TRACED))


@pytest.fixture(scope="module")
def pool():
    # The loading tests point workers at a stub analyzer; these need the real one.
    saved = os.environ.pop("NNLINT_TRACE_ANALYZER", None)
    try:
        with WorkerPool(TraceOptions(jobs=2)) as workers:
            yield workers
    finally:
        if saved is not None:
            os.environ["NNLINT_TRACE_ANALYZER"] = saved


@pytest.fixture(scope="module")
def traced(pool):
    files = _files("buggy") + _files("clean")
    diagnostics, notes = trace_files(files, TraceOptions(jobs=2, timeout=60, verbose=True), pool=pool)
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
    assert set(not_traced) == set(EXPECTED_NOT_TRACED), not_traced
    for place, reason in EXPECTED_NOT_TRACED.items():
        assert reason in not_traced[place], not_traced[place]
    assert any("traced via fx" in n for n in notes) and any("traced via eager" in n for n in notes)


def test_findings_are_reported_once(traced):
    _, diagnostics, _ = traced
    keys = [(d.path, d.line, d.code) for d in diagnostics]
    assert len(keys) == len(set(keys))


def test_fake_path_keeps_devices_read_off_inputs(pool):
    # `torch.arange(T, device=idx.device)` follows the input; `torch.ones(T, T)` does not.
    files = [(str(FIXTURES / "clean" / "trace_gpt.py"), "clean/trace_gpt.py")] + [
        (str(FIXTURES / kind / "trace_device.py"), f"{kind}/trace_device.py") for kind in ("buggy", "clean")]
    diagnostics, notes = trace_files(files, TraceOptions(jobs=2, timeout=60, fake=True, verbose=True), pool=pool)
    assert {(d.path, d.line, d.code) for d in diagnostics} == {
        ("buggy/trace_device.py", line, code) for line, code in markers(files[1][0])}
    assert sum("traced via fake-" in n for n in notes) >= 4, notes


def test_cli_reports_trace_findings_and_static_only_turns_them_off():
    path = FIXTURES / "buggy" / "trace_broadcast.py"
    line = next(n for n, c in markers(str(path)))
    result = run_nnlint("check", "--format", "json", path)
    diagnostics = json.loads(result.stdout)
    traced = [d for d in diagnostics if d.get("source") == "trace"]
    assert [(d["code"], d["line"]) for d in traced] == [("NNL701", line)], result.stdout + result.stderr

    static = run_nnlint("check", "--format", "json", "--static-only", path)
    assert [d for d in json.loads(static.stdout) if d.get("source") == "trace"] == []


def test_synthesized_labels_stay_below_the_number_of_classes():
    import torch

    from nnlint.trace import input_search
    from nnlint.trace.inputs import parse_input

    model = torch.nn.Sequential(torch.nn.Embedding(1000, 8), torch.nn.Linear(8, 6))
    sizes = {"B": 97, "T": 5}
    (tokens, labels), kwargs = input_search.make_tensors(parse_input(["int64[B,T]", "int64[B]"]), sizes, model, "cpu")
    assert tokens.max() >= 6 and tokens.max() < 1000 and labels.max() < 6
    _, kwargs = input_search.make_tensors(parse_input({"target": "int64[B]"}), sizes, model, "cpu")
    assert kwargs["target"].max() < 6


def test_traced_rules_examples(pool, tmp_path):
    """Every traced rule's INVALID example yields its code at the marked lines, its VALID one does not."""
    from nnlint.registry import registry
    from nnlint.rule import EXPECT_MARKER

    files, expected = [], {}
    for code, rule in registry().items():
        if rule.layer != "trace":
            continue
        for kind, examples in (("invalid", rule.INVALID), ("valid", rule.VALID)):
            for index, example in enumerate(examples):
                path = tmp_path / f"{code}_{kind}_{index}.py"
                path.write_text(example, encoding="utf-8")
                files.append((str(path), path.name))
                marked = {n for n, line in enumerate(example.split("\n"), 1) if EXPECT_MARKER in line}
                expected[path.name] = (code, marked if kind == "invalid" else set())
    diagnostics, _ = trace_files(files, TraceOptions(jobs=2, timeout=60), pool=pool)
    problems = {}
    for name, (code, lines) in expected.items():
        got = {d.line for d in diagnostics if d.path == name and d.code == code}
        untraced = [d.message for d in diagnostics if d.path == name and d.code == "NNL790"]
        if got != lines or untraced:
            problems[name] = {"expected": lines, "got": got, "not traced": untraced}
    assert not problems, problems


def test_messages_are_one_line_of_at_most_200_characters(traced):
    _, diagnostics, _ = traced
    long = [d.message for d in diagnostics if "\n" in d.message or len(d.message) > 200]
    assert not long, long


USAGE = FIXTURES.parent / "tests" / "trace_fixtures" / "usage"


def test_models_are_built_and_fed_the_way_the_code_does(pool):
    """tests/trace_fixtures/usage: call sites in main() with argparse defaults, resolved through
    imports; `.double()`; a literal example input; a graph layer; a block only its parent can feed;
    a guessed image size whose false view finding must not survive a second input."""
    files = [(str(p), f"usage/{p.name}") for p in sorted(USAGE.glob("*.py"))]
    diagnostics, notes = trace_files(files, TraceOptions(jobs=2, timeout=60, verbose=True), pool=pool)
    expected = {(f"usage/{p.name}", line, code) for p in sorted(USAGE.glob("*.py"))
                for line, code in markers(str(p))}
    assert {(d.path, d.line, d.code) for d in diagnostics} == expected, [d.message for d in diagnostics]

    def note(where: str) -> str:
        return "\n".join(n for n in notes if n.startswith(where))

    assert "built with call site Net(50, 10) at usage/train.py:15" in note("usage/models.py:6: Net")
    assert "0 of 1 finding(s) on the guessed input confirmed" in note("usage/models.py:6: Net")
    assert "call site" not in note("usage/other.py:5: Net")  # the same name in another file
    assert "call site RowReader('LSTM', 28, 64)" in note("usage/models.py:23: RowReader")
    assert "from literal example input" in note("usage/models.py:23: RowReader")
    assert "traced via" in note("usage/models.py:38: Sequence")  # float64, as `seq.double()` makes it
    assert "inside Stack" in note("usage/graph.py:16: ScaledBlock")
    graph = note("usage/graph.py:7: GraphConv")
    assert "traced via" in graph and "batch checks skipped" in graph


def test_models_past_the_fake_threshold_take_the_fake_path(pool):
    # Small models are built for real; one that grows past the threshold while being built is
    # stopped there and rebuilt on the meta device, with the same parameter count reported.
    files = [(str(FIXTURES / "clean" / "trace_gpt.py"), "clean/trace_gpt.py")]
    counts = {}
    for threshold, path in ((50_000_000, "traced via fx"), (1_000, "traced via fake-")):
        _, notes = trace_files(files, TraceOptions(jobs=1, timeout=60, fake_threshold=threshold, verbose=True),
                               pool=pool)
        traced = [n for n in notes if "traced via" in n]
        assert traced and all(path in n for n in traced), notes
        counts[threshold] = sorted(re.findall(r"([\d,]+) parameters", " ".join(traced)))
    assert counts[1_000] == counts[50_000_000] and counts[1_000], counts


FRAME_SCORER = '''
import torch
from torch import nn


class FrameScorer(nn.Module):
    """Scores each frame of one utterance (T, 40), weighted by attention over its frames."""

    def __init__(self):
        super().__init__()
        self.attend = nn.Linear(40, 1)
        self.head = nn.Linear(40, 8)

    def forward(self, frames):
        weights = torch.softmax(self.attend(frames), dim=0)
        return self.head(weights * frames)


model = FrameScorer()
utterances = torch.randn(16, 50, 40)
scores = [model(CALL) for i in range(len(utterances))]
'''


@pytest.mark.parametrize("call, codes", [("utterances[i]", set()), ("utterances", {"NNL704", "NNL705"})])
def test_models_called_on_one_sample_get_no_batch_hazards(pool, tmp_path, call, codes):
    # Softmax over dim 0 pools one utterance's frames; called on the whole batch it mixes samples.
    path = tmp_path / "frames.py"
    path.write_text(FRAME_SCORER.replace("CALL", call))
    diagnostics, _ = trace_files([(str(path), "frames.py")], TraceOptions(jobs=1, timeout=60), pool=pool)
    assert {d.code for d in diagnostics} == codes, diagnostics
    assert all(d.line == 15 for d in diagnostics)


RECOMMENDERS = '''
import torch
from torch import nn


class NeuralCF(nn.Module):
    """One user id and one item id per sample: their embeddings side by side, then an MLP."""

    def __init__(self, n_users=100, n_items=50, dim=16):
        super().__init__()
        self.user_emb = nn.Embedding(n_users, dim)
        self.item_emb = nn.Embedding(n_items, dim)
        self.mlp = nn.Sequential(nn.Linear(2 * dim, 32), nn.ReLU(), nn.Linear(32, 1))

    def forward(self, user, item):
        pair = torch.cat([self.user_emb(user), self.item_emb(item)], dim=1)
        return self.mlp(pair).squeeze(1)


class RankedCF(NeuralCF):
    def forward(self, user, item):
        pair = torch.cat([self.user_emb(user), self.item_emb(item)], dim=1)
        return torch.softmax(self.mlp(pair).squeeze(1), dim=0)


class BagClassifier(nn.Module):
    def __init__(self, vocab=200, dim=16, classes=4):
        super().__init__()
        self.embedding = nn.EmbeddingBag(vocab, dim)
        self.fc = nn.Linear(dim, classes)

    def forward(self, text, offsets):
        return self.fc(self.embedding(text, offsets))


class TokenNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(100, 16)
        self.rnn = nn.GRU(16, 8, batch_first=True)

    def forward(self, tokens):
        return self.rnn(self.emb(tokens))[0][:, -1]
'''


def _line(source: str, text: str) -> int:
    return next(n for n, line in enumerate(source.split("\n"), 1) if text in line)


def _traced_inputs(notes: list[str]) -> dict[str, str]:
    """Model name -> the input its traced note shows."""
    found = (re.search(r": (\w+): traced via .* input (.*) from ", n) for n in notes)
    return {m.group(1): m.group(2) for m in found if m}


def test_embedding_models_get_one_id_per_sample_when_token_sequences_do_not_run(pool, tmp_path):
    # NeuralCF's concatenation along dim 1 only works on one id per sample; a softmax over those
    # samples is the hazard; token models keep their (B, T) input; EmbeddingBag gets flat ids and offsets.
    path = tmp_path / "recommenders.py"
    path.write_text(RECOMMENDERS)
    diagnostics, notes = trace_files([(str(path), "recommenders.py")], TraceOptions(jobs=1, timeout=60, verbose=True),
                                     pool=pool)
    line = _line(RECOMMENDERS, "softmax")
    assert {(d.line, d.code) for d in diagnostics} == {(line, "NNL704"), (line, "NNL705")}, diagnostics
    inputs = _traced_inputs(notes)
    for name in ("NeuralCF", "RankedCF"):  # sibling id inputs of one shape
        assert re.fullmatch(r'\["int64\[(\d+)\]", "int64\[\1\]"\]', inputs[name]), notes
    assert re.fullmatch(r'"int64\[\d+,\d+\]"', inputs["TokenNet"]), notes
    assert "BagClassifier" in inputs, notes


def test_embedding_bags_get_flat_ids_only_when_forward_takes_offsets():
    from torch import nn

    from nnlint.trace.input_search import _layer_candidates

    bag = nn.EmbeddingBag(10, 4)
    assert [specs for specs, _ in _layer_candidates(bag, [])] == [["int64[B,T]"]]
    assert [specs for specs, _ in _layer_candidates(bag, [], takes_offsets=True)] == [
        ["int64[B,T]"], ["int64[L]", "offsets=int64[B]"]]
    assert [specs for specs, _ in _layer_candidates(nn.Embedding(10, 4), [])] == [["int64[B,T]"], ["int64[B]"]]


COMMENTED = '''
import torch
import torch.nn.functional as F
from torch import nn


class Pooled(nn.Module):
    def __init__(self):
        super().__init__()
        self.head = nn.Linear(3 * 8 * 8, 10)

    # images: (B, 3, 32, 32)
    def forward(self, images):
        b, c, h, w = images.shape
        return self.head(F.avg_pool2d(images, 4).reshape(b, -1))


class PooledDocumented(Pooled):
    def forward(self, x):
        """Class scores.

        Args:
            x (Tensor): images of shape (batch, 3, 32, 32)
        """
        b, c, h, w = x.shape
        return self.head(F.avg_pool2d(x, 4).reshape(b, -1))


class PooledGarbled(Pooled):
    def forward(self, x):
        # x: (B, 3, H*2, W/2) or [batch, ???
        b, c, h, w = x.shape
        return self.head(F.avg_pool2d(x, 4).reshape(b, -1))


class TimeMajor(nn.Module):
    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(1))

    def forward(self, x):
        # x: [seq_len, batch, 5]
        t, b, f = x.shape
        return (x * self.scale).softmax(dim=DIM)
'''


@pytest.mark.parametrize("dim, codes", [(0, set()), (1, {"NNL704", "NNL705"})])
def test_shape_comments_feed_forwards_nothing_else_fits(pool, tmp_path, dim, codes):
    # The comments give the shapes; the garbled one is ignored (its model stays untraced); the
    # batch is where the comment puts it: a softmax over the sequence is fine, over the batch not.
    path = tmp_path / "commented.py"
    path.write_text(COMMENTED.replace("DIM", str(dim)))
    diagnostics, notes = trace_files([(str(path), "commented.py")], TraceOptions(jobs=1, timeout=60, verbose=True),
                                     pool=pool)
    inputs = _traced_inputs(notes)
    assert re.fullmatch(r'"float32\[\d+,3,32,32\]"', inputs["Pooled"]), notes
    assert inputs["PooledDocumented"] == inputs["Pooled"], notes
    assert "PooledGarbled" not in inputs and "TimeMajor" in inputs, notes
    garbled, softmax = _line(COMMENTED, "class PooledGarbled"), _line(COMMENTED, "softmax")
    assert {(d.line, d.code) for d in diagnostics} == {(garbled, "NNL790")} | {(softmax, c) for c in codes}, diagnostics


# NNL302's fix made exact by the ranks tracing saw: `nnlint check` on one shared project.
SOFTMAX_HEADER = "import torch\nimport torch.nn.functional as F\nfrom torch import nn\n\n\n"
SOFTMAX_FILES = {
    "dense.py": SOFTMAX_HEADER + '''class Classifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(16, 4)
        self.log_probs = nn.LogSoftmax()

    def forward(self, x):
        logits = self.fc(x)
        return F.softmax(logits) + self.log_probs(logits)


probs = Classifier()(torch.randn(8, 16))
''',
    # Data-dependent control flow: traced eagerly; the module is built inside a Sequential.
    "maps.py": SOFTMAX_HEADER + '''class Segmenter(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 5, 3, padding=1)
        self.probs = nn.Sequential(nn.ReLU(), nn.Softmax())

    def forward(self, x):
        h = self.conv(x)
        if h.sum() > 1e9:
            h = h * 0
        return self.probs(h) + F.log_softmax(h)


masks = Segmenter()(torch.randn(2, 3, 9, 9))
''',
    "sequence.py": SOFTMAX_HEADER + '''class Tagger(nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(8, 6)

    def forward(self, tokens):
        return F.softmax(self.proj(tokens))


tags = Tagger()(torch.randn(4, 7, 8))
''',
    # No example call: the input is a guess (a 2-D one first), so the rank at the softmax is unknown.
    "guessed.py": SOFTMAX_HEADER + '''class Scorer(nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(8, 6)

    def forward(self, tokens):
        return F.softmax(self.proj(tokens))
''',
    # One call, run on a 2-D and on a 3-D tensor: the runs disagree.
    "mixed.py": SOFTMAX_HEADER + '''def normalize(scores):
    return F.softmax(scores)


class TwoHeads(nn.Module):
    def __init__(self):
        super().__init__()
        self.rows = nn.Linear(8, 3)

    def forward(self, x):
        flat = normalize(self.rows(x))
        steps = normalize(self.rows(x).unsqueeze(1).expand(-1, 2, -1))
        return flat.sum() + steps.sum()


both = TwoHeads()(torch.randn(4, 8))
''',
}


def _softmax_project(root):
    for name, text in SOFTMAX_FILES.items():
        (root / name).write_text(text, encoding="utf-8")
    return root


def _check(paths, pool, **options):
    from nnlint.api import CheckOptions, check_paths

    return check_paths([str(p) for p in paths], CheckOptions([], trace_pool=pool, **{"cache": False, **options}))


def _softmax_fixes(outcome) -> dict[tuple[str, str], tuple[str, str, str]]:
    """(file, the line's code) -> (applicability, fix message, the line once fixed) of each NNL302."""
    from nnlint.fixes import apply_edits

    found = {}
    for d in outcome.diagnostics:
        if d.code == "NNL302":
            name = os.path.basename(d.path)
            line = SOFTMAX_FILES[name].split("\n")[d.line - 1]
            fixed = apply_edits(SOFTMAX_FILES[name], d.fix.edits).split("\n")[d.line - 1]
            found[(name, line.strip())] = (d.fix.applicability.value, d.fix.message, fixed.strip())
    return found


@pytest.fixture(scope="module")
def softmax_checked(pool, tmp_path_factory):
    return _check([_softmax_project(tmp_path_factory.mktemp("softmax"))], pool)


def test_traced_ranks_make_the_softmax_fix_exact(softmax_checked):
    fixes = _softmax_fixes(softmax_checked)
    assert {key: (level, fixed) for key, (level, _, fixed) in fixes.items()} == {
        ("dense.py", "self.log_probs = nn.LogSoftmax()"): ("safe", "self.log_probs = nn.LogSoftmax(dim=-1)"),
        ("dense.py", "return F.softmax(logits) + self.log_probs(logits)"):
            ("safe", "return F.softmax(logits, dim=-1) + self.log_probs(logits)"),
        ("maps.py", "self.probs = nn.Sequential(nn.ReLU(), nn.Softmax())"):
            ("safe", "self.probs = nn.Sequential(nn.ReLU(), nn.Softmax(dim=1))"),
        ("maps.py", "return self.probs(h) + F.log_softmax(h)"):
            ("safe", "return self.probs(h) + F.log_softmax(h, dim=1)"),
        ("sequence.py", "return F.softmax(self.proj(tokens))"):
            ("unsafe", "return F.softmax(self.proj(tokens), dim=-1)"),
        ("guessed.py", "return F.softmax(self.proj(tokens))"):
            ("unsafe", "return F.softmax(self.proj(tokens), dim=-1)"),
        ("mixed.py", "return F.softmax(scores)"): ("unsafe", "return F.softmax(scores, dim=-1)"),
    }
    assert "2-D" in fixes[("dense.py", "self.log_probs = nn.LogSoftmax()")][1]
    assert "4-D" in fixes[("maps.py", "return self.probs(h) + F.log_softmax(h)")][1]
    assert fixes[("guessed.py", "return F.softmax(self.proj(tokens))")][1] == "pass dim=-1"  # the static fix
    assert fixes[("mixed.py", "return F.softmax(scores)")][1] == "pass dim=-1"
    (three_d,) = [d for d in softmax_checked.diagnostics if d.code == "NNL302" and d.path.endswith("sequence.py")]
    assert "traced on a 3-D input, it normalizes over dim 0" in three_d.message and len(three_d.message) <= 200


def test_json_report_carries_the_exact_fix(softmax_checked):
    from nnlint.report import render

    report = json.loads(render("json", softmax_checked.diagnostics, softmax_checked.summary, color=False))
    (dense,) = [d for d in report if d["code"] == "NNL302" and d["path"].endswith("dense.py") and d["line"] == 14]
    assert dense["source"] == "static"
    assert dense["fix"]["applicability"] == "safe" and dense["fix"]["edits"][0]["content"] == "logits, dim=-1"


def test_static_only_keeps_the_unsafe_fix(tmp_path):
    outcome = _check([_softmax_project(tmp_path)], None, static_only=True)
    fixes = _softmax_fixes(outcome)
    assert len(fixes) == 7 and {(level, message) for level, message, _ in fixes.values()} == {("unsafe", "pass dim=-1")}


def test_fix_applies_the_traced_safe_fixes_only(pool, tmp_path):
    from nnlint.diagnostics import Applicability

    root = _softmax_project(tmp_path)
    outcome = _check([root], pool, fix=frozenset({Applicability.SAFE}))
    text = {name: (root / name).read_text(encoding="utf-8") for name in SOFTMAX_FILES}
    assert "nn.LogSoftmax(dim=-1)" in text["dense.py"] and "F.softmax(logits, dim=-1)" in text["dense.py"]
    assert "nn.Softmax(dim=1)" in text["maps.py"] and "F.log_softmax(h, dim=1)" in text["maps.py"]
    for name in ("sequence.py", "guessed.py", "mixed.py"):  # unsafe: left for --unsafe-fixes
        assert text[name] == SOFTMAX_FILES[name]
    assert sorted(os.path.basename(d.path) for d in outcome.diagnostics if d.code == "NNL302") == [
        "guessed.py", "mixed.py", "sequence.py"]


def test_cached_trace_keeps_the_exact_fix(pool, tmp_path):
    (tmp_path / "dense.py").write_text(SOFTMAX_FILES["dense.py"], encoding="utf-8")
    runs = []
    for _ in range(2):
        outcome = _check([tmp_path / "dense.py"], pool, cache=True, cache_dir=str(tmp_path / "cache"), verbose=True)
        runs.append({level for level, _, _ in _softmax_fixes(outcome).values()})
    assert any("trace results from the cache" in note for note in outcome.notes)
    assert runs == [{"safe"}, {"safe"}]


STATEFUL_LM = '''
import torch
import torch.nn.functional as F
from torch import nn


class CharLM(nn.Module):
    def __init__(self, vocab=50, embed=16, hidden=32, layers=2):
        super().__init__()
        self.embed = nn.Embedding(vocab, embed)
        self.rnn = nn.RNN_TYPE(embed, hidden, layers, batch_first=True)
        self.linear = nn.Linear(hidden, vocab)

    def forward(self, x, state):
        out, state = self.rnn(self.embed(x), state)
        out = out.reshape(out.size(0) * out.size(1), out.size(2))
        return F.log_softmax(self.linear(out), dim=DIM), state
'''


@pytest.mark.parametrize("rnn, dim, codes", [("LSTM", 1, set()), ("GRU", 1, set()), ("LSTM", 0, {"NNL705"})])
def test_recurrent_state_taken_by_forward_is_zeros_for_its_rnn(pool, tmp_path, rnn, dim, codes):
    """`forward(x, state)` with the caller's own zeros (no init_hidden): the state is built for the RNN."""
    path = tmp_path / "lm.py"
    text = STATEFUL_LM.replace("RNN_TYPE", rnn).replace("DIM", str(dim))
    path.write_text(text, encoding="utf-8")
    diagnostics, notes = trace_files([(str(path), "lm.py")], TraceOptions(jobs=1, timeout=60, verbose=True),
                                     pool=pool)
    assert {d.code for d in diagnostics} == codes, diagnostics
    assert all(d.line == _line(text, "log_softmax") for d in diagnostics)
    assert any("with a zero state" in note for note in notes), notes
