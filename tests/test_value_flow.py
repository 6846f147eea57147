"""Facts that flow across functions and checked files: call-site parameters, returns, imports."""

from __future__ import annotations

import pickle

import libcst

from nnlint.engine import FileTask, lint_files, lint_text
from nnlint.registry import registry
from nnlint.static.project import ProjectIndex

STATIC = frozenset(code for code, rule in registry().items() if rule.layer == "static")

NET = """\
import torch
import torch.nn as nn
import torch.nn.functional as F

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)
        self.drop = nn.Dropout(0.5)

    def forward(self, x):
        return F.softmax(self.fc(self.drop(x)), dim=1)
"""

TRAIN = """\
def train(model, loader, criterion, optimizer):
    for x, y in loader:
        optimizer.zero_grad()
        loss = criterion(model(x), y)
        loss.backward()
        optimizer.step()
"""


def codes_at(text: str, code: str) -> list[int]:
    return [d.line for d in lint_text(text, "train.py", STATIC).diagnostics if d.code == code]


def test_a_criterion_and_model_passed_by_every_caller_reach_the_loss_inside_train():
    text = NET + TRAIN + "model = Net()\ntrain(model, loader, nn.CrossEntropyLoss(), opt)\n"
    assert codes_at(text, "NNL401") == [16]


def test_callers_that_disagree_make_the_parameter_unknown():
    text = NET + TRAIN + ("train(Net(), loader, nn.CrossEntropyLoss(), opt)\n"
                          "train(Net(), loader, nn.MSELoss(), opt)\n")
    assert codes_at(text, "NNL401") == []


def test_a_function_passed_as_a_callback_may_be_called_with_anything():
    text = NET + TRAIN + "train(Net(), loader, nn.CrossEntropyLoss(), opt)\nrun_elsewhere(train)\n"
    assert codes_at(text, "NNL401") == []


def test_a_builder_function_returning_the_model_carries_its_output_kind():
    text = NET + "def build():\n    return Net()\nmodel = build()\nloss = F.cross_entropy(model(x), y)\n"
    assert codes_at(text, "NNL401") == [16]


def test_helper_methods_and_tuple_outputs_are_followed():
    text = (
        "import torch\nimport torch.nn as nn\nimport torch.nn.functional as F\n"
        "class VAE(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
        "        self.fc = nn.Linear(4, 4)\n"
        "    def decode(self, z):\n        return torch.sigmoid(self.fc(z))\n"
        "    def forward(self, x):\n        return self.decode(x), x.mean()\n"
        "def loss_function(recon, x):\n    return F.binary_cross_entropy(recon, x)\n"
        "model = VAE()\nrecon, mu = model(x)\nloss = loss_function(recon, x)\n"
    )
    assert codes_at(text, "NNL403") == [13]


def _project(tmp_path, files: dict[str, str]) -> list:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    tasks = [FileTask(str(tmp_path / name), name, STATIC) for name in files]
    return [(d.path, d.code, d.line) for r in lint_files(tasks, jobs=1) for d in r.diagnostics if d.code[3] in "45"]


def test_a_model_imported_from_another_checked_file_is_known_by_its_summary(tmp_path):
    main = ("import torch\nfrom net import Net\nimport torch.nn as nn\n" + TRAIN +
            "model = Net().to('cpu')\ntrain(model, loader, nn.CrossEntropyLoss(), opt)\n")
    assert ("main.py", "NNL401", 7) in _project(tmp_path, {"net.py": NET, "main.py": main})
    # Checked alone, the imported model is unknown: nothing is reported.
    assert ("main.py", "NNL401", 7) not in _project(tmp_path, {"main.py": main})


def test_eval_mode_is_required_only_of_models_known_to_have_dropout(tmp_path):
    evaluate = ("import torch\nfrom net import Net\n"
                "def evaluate(model, loader):\n    with torch.no_grad():\n        for x, y in loader:\n"
                "            out = model(x)\n"
                "model = Net()\nfor x, y in train_loader:\n    model(x).sum().backward()\n"
                "evaluate(model, val_loader)\n")
    assert ("main.py", "NNL502", 6) in _project(tmp_path, {"net.py": NET, "main.py": evaluate})
    no_dropout = NET.replace("nn.Dropout(0.5)", "nn.Identity()")
    assert ("main.py", "NNL502", 6) not in _project(tmp_path, {"net.py": no_dropout, "main.py": evaluate})


def test_summaries_are_plain_picklable_data_and_each_file_is_parsed_once(tmp_path, monkeypatch):
    (tmp_path / "net.py").write_text(NET)
    (tmp_path / "a_main.py").write_text("from net import Net\nimport torch.nn.functional as F\n"
                                        "loss = F.cross_entropy(Net()(x), y)\n")
    index = ProjectIndex([str(tmp_path / "net.py"), str(tmp_path / "a_main.py")])
    summary = index.summary(str(tmp_path / "net.py"))
    assert pickle.loads(pickle.dumps(summary)) == summary
    assert summary.get("Net").eval_sensitive is True and summary.get("Net").is_module

    parsed = []
    real = libcst.parse_module
    monkeypatch.setattr(libcst, "parse_module", lambda text, *a, **k: parsed.append(text[:12]) or real(text, *a, **k))
    tasks = [FileTask(str(tmp_path / n), n, STATIC) for n in ("a_main.py", "net.py")]
    found = [(d.path, d.code) for r in lint_files(tasks, jobs=1) for d in r.diagnostics]
    assert ("a_main.py", "NNL401") in found
    assert len(parsed) == 2  # net.py parsed for its summary once, and that tree reused when it is checked


def test_the_result_cache_is_invalidated_by_a_change_in_an_imported_checked_file(tmp_path):
    from nnlint.cache import ResultCache
    from nnlint.layers import lint_cached

    (tmp_path / "net.py").write_text(NET)
    (tmp_path / "main.py").write_text("from net import Net\nimport torch.nn.functional as F\n"
                                      "loss = F.cross_entropy(Net()(x), y)\n")
    tasks = [FileTask(str(tmp_path / n), n, STATIC) for n in ("main.py", "net.py")]

    def found():
        cache = ResultCache(tmp_path / "cache", "static")
        codes = [(d.path, d.code) for r in lint_cached(tasks, cache, jobs=1) for d in r.diagnostics]
        cache.save()
        return codes

    assert ("main.py", "NNL401") in found()
    assert ("main.py", "NNL401") in found()  # from the cache
    (tmp_path / "net.py").write_text(NET.replace("F.softmax(self.fc(self.drop(x)), dim=1)", "self.fc(x)"))
    assert ("main.py", "NNL401") not in found()


def test_a_forward_branching_on_self_training_counts_as_eval_sensitive():
    text = ("import torch\nimport torch.nn as nn\nclass Net(nn.Module):\n    def __init__(self):\n"
            "        super().__init__()\n        self.fc = nn.Linear(4, 2)\n    def forward(self, x):\n"
            "        return self.fc(x + torch.randn_like(x) if self.training else x)\n"
            "model = Net()\nfor x, y in train_loader:\n    model(x).sum().backward()\n"
            "with torch.no_grad():\n    for x, y in val_loader:\n        out = model(x)\n")
    assert codes_at(text, "NNL502") == [14]
