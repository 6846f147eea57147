"""NNL4 behaviour the VALID/INVALID examples cannot express: messages, sharing, odd syntax."""

from __future__ import annotations

from nnlint.engine import lint_text

LOSS_CODES = frozenset({"NNL401", "NNL402", "NNL403", "NNL404"})

MIXED = """\
import torch
import torch.nn as nn
import torch.nn.functional as F

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        return self.fc(x)

def step(x, y, t):
    net = Net()
    probs = F.softmax(net(x), dim=1)
    a = F.cross_entropy(probs, y)
    b = F.nll_loss(net(x), y)
    c = F.binary_cross_entropy(torch.sigmoid(net(x)), t)
    d = torch.log(torch.sigmoid(net(x)))
    return a + b + c + d
"""


def _findings(text: str, codes=LOSS_CODES):
    return [(d.line, d.code, d.message) for d in lint_text(text, "t.py", codes).diagnostics]


def test_each_rule_reports_its_own_family_once_when_all_are_enabled():
    found = _findings(MIXED)
    assert sorted((line, code) for line, code, _ in found) == [
        (16, "NNL401"), (17, "NNL404"), (18, "NNL403"), (19, "NNL402")]


def test_messages_name_the_value_and_the_fix():
    messages = {code: message for _, code, message in _findings(MIXED)}
    assert "`probs` is softmax probabilities" in messages["NNL401"]
    assert "raw logits" in messages["NNL404"] and "`Net`" in messages["NNL404"]
    assert "BCEWithLogitsLoss" in messages["NNL403"]
    assert "F.logsigmoid" in messages["NNL402"]


def test_a_rule_alone_still_runs_the_shared_analysis():
    assert [code for _, code, _ in _findings(MIXED, frozenset({"NNL404"}))] == ["NNL404"]


def test_odd_syntax_does_not_crash_and_forgets_rebound_names():
    text = """\
import torch.nn.functional as F

def f(x, y, mode):
    p = F.softmax(x, dim=1)
    match mode:
        case "a":
            p = x
    while (q := F.softmax(x, dim=1)) is None:
        pass
    try:
        r = F.softmax(x, dim=1)
    except ValueError:
        r = x
    [F.cross_entropy(p, y) for p in (x,)]
    class Inner:
        pass
    async def g():
        async with ctx() as p:
            return F.cross_entropy(p, y)
    return F.cross_entropy(p, y) + F.cross_entropy(r, y)
"""
    assert _findings(text) == []
