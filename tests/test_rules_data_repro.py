"""Behaviour of the data (NNL1) and reproducibility (NNL2) rules that single examples cannot show."""

from __future__ import annotations

import libcst as cst

from nnlint.engine import lint_text
from nnlint.static.rng import ALL_RNGS, NOTHING, TORCH_ONLY, seeded_rngs
from nnlint.imports import ImportTable


def findings(code: str, source: str):
    return [(d.line, d.message) for d in lint_text(source, "script.py", frozenset({code})).diagnostics]


TRAIN_SCRIPT = '''import torch

def train_epoch(model, loader, optimizer):
    for x, y in loader:
        optimizer.zero_grad()
        model(x).sum().backward()
        optimizer.step()

def finetune(model, loader, optimizer):
    for x, y in loader:
        model(x).sum().backward()

def main():
    train_epoch(build(), loader(), make_optimizer())

if __name__ == "__main__":
    main()
'''


def test_missing_seed_is_reported_once_at_the_first_training_call():
    found = findings("NNL201", TRAIN_SCRIPT)
    assert [line for line, _ in found] == [6]
    assert "`model(x).sum().backward()`" in found[0][1]


def test_missing_seed_silenced_by_any_seeding_call_anywhere():
    for seeding in ("torch.manual_seed(0)", "torch.random.manual_seed(0)", "utils.random_seed(0, rank)"):
        assert findings("NNL201", TRAIN_SCRIPT + f"    {seeding}\n") == []


def test_a_generator_seed_does_not_seed_the_global_rng():
    assert len(findings("NNL201", TRAIN_SCRIPT + "    g = torch.Generator()\n    g.manual_seed(0)\n")) == 1


def _seeds(source: str) -> frozenset[str]:
    module = cst.parse_module(source)
    table = ImportTable()
    for statement in module.body[:-1]:
        table.add(statement.body[0])
    return seeded_rngs(module.body[-1].body[0].value, table.resolve)


def test_seeded_rngs_classifies_seeding_calls():
    assert _seeds("import torch\ntorch.manual_seed(0)\n") == TORCH_ONLY
    assert _seeds("import numpy as np\nnp.random.seed(0)\n") == {"numpy"}
    assert _seeds("import random\nrandom.seed(0)\n") == {"random"}
    assert _seeds("from lightning import seed_everything\nseed_everything(0)\n") == ALL_RNGS
    assert _seeds("import numpy as np\nnp.random.default_rng(0)\n") == NOTHING
    assert _seeds("import torch\ntorch.initial_seed()\n") == NOTHING


def test_partial_seed_reports_each_unseeded_rng_once_at_its_first_draw():
    source = ("import random\nimport numpy as np\nimport torch\ntorch.manual_seed(0)\n"
              "a = random.random()\nb = np.random.rand()\nc = random.random()\nd = np.random.rand()\n"
              "opt.step()\n")
    found = findings("NNL202", source)
    assert [line for line, _ in found] == [5, 6]
    assert "random.seed(seed)" in found[0][1] and "np.random.seed(seed)" in found[1][1]


def test_partial_seed_reverse_case_is_left_to_missing_seed_when_the_file_trains():
    source = "import numpy as np\nimport torch\nnp.random.seed(0)\nx = torch.randn(3)\nloss.backward()\n"
    assert findings("NNL202", source) == []


def test_independent_shuffle_names_both_arrays():
    source = "import numpy as np\nnp.random.shuffle(images)\nnp.random.shuffle(labels)\n"
    [(line, message)] = findings("NNL101", source)
    assert line == 3 and "`labels`" in message and "`images`" in message


def test_preprocessing_before_split_reported_once_per_fit():
    source = ("import numpy as np\nmean = X.mean(axis=0)\nstd = X.std(axis=0)\nX = (X - mean) / std\n"
              "X_train, X_test = X[:800], X[800:]\nY_train, Y_test = X[:900], X[900:]\n")
    assert [line for line, _ in findings("NNL102", source)] == [2]


def test_partial_seed_skips_tests_and_top_level_demo_values():
    source = ("import numpy as np\nimport torch\ntorch.manual_seed(0)\n\n"
              "def test_metric():\n    y = np.random.rand(50)\n")
    assert findings("NNL202", source) == [(6, findings("NNL202", source)[0][1])]  # in a def: data code
    assert [d for d in lint_text(source, "tests/test_metric.py", frozenset({"NNL202"})).diagnostics] == []
    assert [d for d in lint_text(source, "pkg/metric_test.py", frozenset({"NNL202"})).diagnostics] == []
    demo = "import numpy as np\nimport torch\ntorch.manual_seed(7)\na = np.random.rand(4, 3)\n"
    assert findings("NNL202", demo) == []
    assert len(findings("NNL202", demo + "np.random.shuffle(rows)\n")) == 1  # reordering data matters
