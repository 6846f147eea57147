"""Fact providers: computed once per file by the engine, fed by the one walk, isolated when they crash."""

from __future__ import annotations

import libcst as cst
import pytest

from nnlint.context import FileContext
from nnlint.engine import lint_text
from nnlint.static.facts.classes import ModuleClasses, decide_modules
from nnlint.static.facts.lossflow import LossFlowFacts
from nnlint.trace.discover import ModelClass

LOSSES = (
    "import torch.nn.functional as F\n"
    "probs = F.softmax(logits, dim=1)\n"
    "loss = F.cross_entropy(probs, y)\n"
    "bce = F.binary_cross_entropy(torch.sigmoid(z), t)\n"
)


def test_walk_fed_facts_are_built_once_for_all_their_rules(monkeypatch):
    built = []
    original = LossFlowFacts.__init__

    def counting(self, ctx):
        built.append(ctx.path)
        original(self, ctx)

    monkeypatch.setattr(LossFlowFacts, "__init__", counting)
    found = lint_text("import torch\n" + LOSSES, "m.py", frozenset({"NNL401", "NNL403", "NNL404"})).diagnostics
    assert sorted(d.code for d in found) == ["NNL401", "NNL403"]
    assert built == ["m.py"]


def test_a_crashing_provider_stops_its_rules_instead_of_feeding_them_partial_facts(monkeypatch):
    def broken(self, node):
        raise RuntimeError("boom")

    monkeypatch.setattr(LossFlowFacts, "visit_AugAssign", broken)
    text = "import torch\n" + LOSSES + "total = 0\ntotal += loss\n"
    found = lint_text(text, "m.py", frozenset({"NNL401", "NNL403", "NNL402"})).diagnostics
    (crash,) = [d for d in found if d.code == "NNL003"]
    assert "LossFlowFacts facts (rules stopped: NNL401, NNL403) crashed" in crash.message
    assert crash.line == 7
    assert not {"NNL401", "NNL403"} & {d.code for d in found}


def test_a_walk_fed_provider_cannot_be_asked_for_once_the_walk_has_begun():
    ctx = FileContext("m.py", cst.parse_module("x = 1\n"))
    ctx.walk_started = True
    with pytest.raises(LookupError, match="uses"):
        ctx.facts(ModuleClasses)


def test_module_classes_follow_local_bases_in_order():
    text = ("import torch.nn as nn\nclass Block(nn.Module):\n    def forward(self, x):\n        return x\n"
            "class Net(Block):\n    pass\nclass Plain:\n    pass\n")
    ctx = FileContext("m.py", cst.parse_module(text))
    facts = ctx.facts(ModuleClasses)
    for statement in ctx.module.body:
        if isinstance(statement, cst.SimpleStatementLine) and isinstance(statement.body[0], cst.Import):
            ctx.imports.add(statement.body[0])
        if isinstance(statement, cst.ClassDef):
            facts.visit_ClassDef(statement)
    verdicts = {scope.node.name.value: (scope.is_module, sorted(scope.methods)) for scope in facts.by_node.values()}
    assert verdicts == {"Block": (True, ["forward"]), "Net": (True, ["forward"]), "Plain": (False, [])}


def test_decide_modules_reaches_a_fixpoint_and_leaves_unknown_bases_undecided():
    def cls(name, *bases):
        return ModelClass(name, 1, 1, 1, 2, list(bases), None)

    classes = [cls("Head", "Body"), cls("Body", "torch.nn.Module"), cls("Cfg", "object"), cls("Ext", "lib.Base"),
               cls("Param", "torch.nn.Parameter")]
    local = {c.name: c for c in classes}
    decide_modules(classes, lambda base: local[base].is_module if base in local else None)
    assert [c.is_module for c in classes] == [True, True, False, None, None]
