"""The traced hazards NNL701-NNL711 on the trace_* fixtures, run in-process through analyze_model.

Each buggy fixture must yield exactly the (line, code) pairs of its `# expect:` markers among trace
codes; its clean twin none. Inputs use B=7, T=5 and spatial sizes 11, 13: pairwise coprime and
coprime with the fixtures' layer sizes, as the runner chooses them.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from conftest import expected_findings  # noqa: E402
from nnlint.registry import registry  # noqa: E402

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
TRACE_CODES = frozenset(code for code, rule in registry().items() if rule.layer == "trace")
B, T = 7, 5


def _floats(*shape):
    return lambda: torch.randn(*shape)


def _ints(high, *shape):
    return lambda: torch.randint(0, high, shape)


# fixture stem -> (model class, input builders, expected path)
CASES = {
    "trace_broadcast": ("PriceRegressor", [_floats(B, 16), _floats(B)], "fx"),
    "trace_loss_shape": ("RatingModel", [_floats(B, 24), _floats(B)], "fx"),
    "trace_class_target": ("IntentClassifier", [_ints(1000, B, T), _ints(6, B)], None),
    "trace_softmax": ("SequenceClassifier", [_floats(B, T, 32)], "fx"),
    "trace_batch_mixing": ("SpeechClassifier", [_floats(B, T, 40)], "fx"),
    "trace_heads_merge": ("Encoder", [_floats(B, T, 32)], "fx"),
    "trace_batch_reduction": ("TabularNet", [_floats(B, 20)], "fx"),
    "trace_batchnorm": ("ConvNet", [_floats(B, 3, 11, 13)], "fx"),
    "trace_nonfinite": ("LogEnergyNet", [_floats(B, 16)], "fx"),
    "trace_initial_loss": ("DigitClassifier", [_floats(B, 64)], "fx"),
    "trace_dead_relu": ("SparseAutoencoder", [_floats(B, 64)], "fx"),
    "trace_vanishing": ("DeepNet", [_floats(B, 32)], "fx"),
    "trace_device": ("CausalAttention", [_floats(B, T, 32)], "eager"),  # fx rejects ones(T, T)
    "trace_untraceable": ("ClipTagger", [_floats(B, 40, 13)], "eager"),  # data-dependent `if`
    "trace_gpt": ("GPT", [_ints(512, B, T)], "fx"),
}


@pytest.fixture(scope="module")
def analyze():
    torch.set_num_threads(1)  # tiny ops: threads only contend
    from nnlint.trace.analyze import analyze_model

    def run(path: Path, *, fake: bool = False, **ctor):
        cls_name, builders, _ = CASES[path.stem]
        model_cls = getattr(_load(path), cls_name)
        torch.manual_seed(0)
        if fake:
            with torch.device("meta"):
                model = model_cls(**ctor)
        else:
            model = model_cls(**ctor)
        inputs = tuple(build() for build in builders)
        if fake:
            inputs = tuple(t.to("meta") for t in inputs)
        return analyze_model(model, inputs, {}, str(path), fake=fake,
                             int_inputs=any(not t.is_floating_point() for t in inputs))

    return run


def _load(path: Path):
    name = f"_nnlint_fixture_{path.parent.name}_{path.stem}"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        sys.modules[name] = module
    return sys.modules[name]


def expected(path: Path) -> set[tuple[int, str]]:
    return set(expected_findings(path, TRACE_CODES))


def _fixtures(kind: str) -> list[Path]:
    return sorted((FIXTURES / kind).glob("trace_*.py"))


@pytest.mark.filterwarnings("ignore:Using a target size")  # torch's own hint for NNL702's fixture
@pytest.mark.parametrize("path", _fixtures("buggy"), ids=lambda p: p.stem)
def test_buggy_fixture_findings_match_markers(analyze, path):
    result = analyze(path)
    found = {(f["line"], f["code"]) for f in result["findings"]}
    assert found == expected(path), result
    assert expected(path), "a buggy trace fixture must mark at least one finding"
    if CASES[path.stem][2]:
        assert result["path"] == CASES[path.stem][2], result["why"]


@pytest.mark.parametrize("path", _fixtures("clean"), ids=lambda p: p.stem)
def test_clean_fixture_has_no_trace_findings(analyze, path):
    result = analyze(path)
    assert result["findings"] == []
    if CASES[path.stem][2]:
        assert result["path"] == CASES[path.stem][2], result["why"]


def test_every_trace_hazard_has_a_buggy_fixture():
    marked = {code for path in _fixtures("buggy") for _, code in expected(path)}
    assert TRACE_CODES - {"NNL790"} <= marked, sorted(TRACE_CODES - {"NNL790"} - marked)


def test_every_fixture_has_a_case_and_buggy_ones_a_clean_twin():
    assert {p.stem for p in _fixtures("buggy") + _fixtures("clean")} <= set(CASES)
    assert {p.stem for p in _fixtures("buggy")} <= {p.stem for p in _fixtures("clean")}


def test_findings_are_plain_located_data(analyze):
    import pickle

    path = FIXTURES / "buggy" / "trace_batch_mixing.py"
    result = analyze(path)
    pickle.dumps(result)
    text = path.read_text().splitlines()
    for item in result["findings"]:
        assert set(item) == {"code", "message", "line", "column", "end_line", "end_column"}
        # The span is the `x.view(...)` call itself.
        assert text[item["line"] - 1][item["column"] - 1:item["end_column"] - 1].startswith("x.view(")


def test_batchnorm_model_is_independent_per_sample(analyze):
    result = analyze(FIXTURES / "clean" / "trace_batchnorm.py")
    assert result["path"] == "fx" and not result["findings"]


def test_untraceable_model_goes_through_eager_path_and_says_why(analyze):
    result = analyze(FIXTURES / "buggy" / "trace_untraceable.py")
    assert result["path"] == "eager"
    assert "fx" in result["why"] and "control flow" in result["why"]


def test_fake_path_finds_shape_hazards_and_skips_value_checks(analyze):
    path = FIXTURES / "buggy" / "trace_heads_merge.py"
    result = analyze(path, fake=True)
    assert result["path"] == "fake-fx"
    assert {(f["line"], f["code"]) for f in result["findings"]} == expected(path)
    assert any("skipped on fake tensors" in note for note in result["notes"])
    # The classic batch mix is still a misaligned reshape on fake tensors; NNL704 needs values.
    mixing = analyze(FIXTURES / "buggy" / "trace_batch_mixing.py", fake=True)
    assert {f["code"] for f in mixing["findings"]} == {"NNL711"}


def test_fake_path_on_a_mid_size_transformer(analyze):
    # ~60M parameters on the meta device: no memory is allocated for the weights.
    result = analyze(FIXTURES / "clean" / "trace_gpt.py", fake=True,
                     vocab_size=8192, block_size=256, n_layer=8, n_head=8, n_embd=768)
    assert result["path"] == "fake-fx", result["why"]
    assert result["findings"] == []


def test_eager_fake_path(analyze):
    path = FIXTURES / "buggy" / "trace_device.py"
    result = analyze(path, fake=True)
    assert result["path"] == "fake-eager"
    assert {(f["line"], f["code"]) for f in result["findings"]} == expected(path)


def test_data_dependent_branch_cannot_run_on_fake_tensors(analyze):
    # The runner reports this as NNL790 (with the model's size, the real path would be too big).
    with pytest.raises(RuntimeError, match="branches on tensor values"):
        analyze(FIXTURES / "buggy" / "trace_untraceable.py", fake=True)


@pytest.mark.parametrize(
    ("src", "dst", "aligned"),
    [
        ((7, 3, 11, 13), (7, 3 * 11 * 13), True),  # merge neighbours
        ((7, 5, 32), (7, 5, 4, 8), True),  # split one dimension
        ((7, 11, 13), (7, 13, 11), False),  # (B, H, W) -> (B, W, H)
        ((7, 4, 5, 8), (7, 5, 32), False),  # heads merged without a permute
        ((7, 5, 32), (7 * 4, 5, 8), False),  # (B, F, E) -> (B * heads, F, E / heads)
        ((2, 7, 16), (7, 32), False),  # (2, B, H) -> (B, 2 * H)
        ((7, 1, 5), (7, 5), True),  # dropping a singleton
        ((7, 1, 49, 512), (7, 1, 1, 7, 7, 512), True),  # splitting past singletons (MaxViT)
    ],
)
def test_reshape_alignment(src, dst, aligned):
    from nnlint.trace.checks import is_aligned_reshape

    assert is_aligned_reshape(src, dst) is aligned


def test_forward_failure_that_is_not_a_loss_mismatch_raises(analyze, tmp_path):
    from nnlint.trace.analyze import analyze_model

    source = tmp_path / "broken.py"
    source.write_text(
        "from torch import nn\n\n\nclass Broken(nn.Module):\n"
        "    def __init__(self):\n        super().__init__()\n        self.fc = nn.Linear(4, 2)\n\n"
        "    def forward(self, x):\n        return self.fc(x)\n"
    )
    module = _load(source)
    with pytest.raises(RuntimeError):
        analyze_model(module.Broken(), (torch.randn(B, 3),), {}, str(source))


def test_initial_loss_only_judges_linear_classifier_heads(analyze):
    from nnlint.trace.analyze import analyze_model

    # Pooled features with constant softmax weights are large, but they are not logits.
    path = FIXTURES / "buggy" / "trace_softmax.py"
    pooling = _load(path).AttentionPooling(32)
    result = analyze_model(pooling, (torch.randn(B, T, 32),), {}, str(path))
    assert {f["code"] for f in result["findings"]} == {"NNL703"}
