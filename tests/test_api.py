"""nnlint.api: the functions the CLI, pre-commit, a language server and notebooks share."""

from __future__ import annotations

import json

from conftest import FIXTURES

from nnlint.api import CheckOptions, RuleSelection, check_paths, lint_source
from nnlint.config import load_file

MODEL = """import torch.nn as nn
import torch.nn.functional as F


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 4)

    def forward(self, x):
        return F.softmax(self.fc(x))  # implicit dim: NNL302
"""


def test_lint_source_matches_check_on_every_fixture(cli, monkeypatch):
    monkeypatch.chdir(FIXTURES.parent)
    for path in sorted(FIXTURES.rglob("*.py")):
        shown = str(path.relative_to(FIXTURES.parent))
        from_cli = json.loads(cli("check", "--static-only", "--format", "json", shown).stdout)
        from_api = [d.to_json() for d in lint_source(path.read_text(encoding="utf-8"), shown)]
        assert from_api == from_cli, shown
    assert any(d["fix"] for d in json.loads(cli("check", "--static-only", "--format", "json", "fixtures").stdout))


def test_lint_source_selects_codes_like_check_for_that_path(project):
    project("pyproject.toml", '[tool.nnlint]\nignore = ["NNL302"]\n[tool.nnlint.per-file-ignores]\n"gen/*" = ["NNL4"]\n')
    text = "import torch\n" + MODEL + "logp = torch.log(F.softmax(z, dim=1))\n"
    assert {d.code for d in lint_source(text, str(project.root / "train.py"))} == {"NNL402"}
    assert lint_source(text, str(project.root / "gen" / "train.py")) == []  # the file need not exist
    explicit = load_file(project("other.toml", '[tool.nnlint]\nselect = ["NNL302"]\n'), RuleSelection().known)
    assert [d.code for d in lint_source(text, "train.py", settings=explicit)] == ["NNL302"]


def test_lint_source_applies_noqa_and_attaches_line_text():
    text = "import torch.nn.functional as F\np = F.softmax(x)\nq = F.softmax(y)  # noqa: NNL302\n"
    (only,) = lint_source(text, "m.py")
    assert (only.code, only.line, only.line_text) == ("NNL302", 2, "p = F.softmax(x)")


def test_no_tracing_when_every_trace_code_is_disabled(project):
    project("model.py", MODEL)
    traced = check_paths(["model.py"], CheckOptions([], verbose=True))
    assert any("traced via" in note or "torch is not importable" in note for note in traced.notes), traced.notes
    static_codes_only = check_paths(["model.py"], CheckOptions([], select=["NNL3"], verbose=True))
    assert static_codes_only.notes == []
    assert [d.code for d in static_codes_only.diagnostics] == ["NNL302"]
