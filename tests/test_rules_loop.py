"""NNL5 behaviour the per-rule examples cannot express: messages, shared facts, cross-function reasoning."""

from __future__ import annotations

from nnlint.engine import lint_text
from nnlint.static.facts import loops as loopfacts

LOOP_CODES = frozenset(f"NNL50{i}" for i in range(1, 10))


def _lint(text: str, codes=LOOP_CODES):
    return lint_text(text, "train.py", frozenset(codes)).diagnostics


def test_messages_name_the_values_involved():
    text = (
        "import torch\n"
        "opt = torch.optim.AdamW(model.parameters(), lr=5e-2)\n"
        "running = 0\n"
        "for x, y in loader:\n"
        "    loss = loss_fn(model(x), y)\n"
        "    loss.backward()\n"
        "    opt.step()\n"
        "    running += loss\n"
    )
    messages = {d.code: d.message for d in _lint(text)}
    assert "`opt.zero_grad()`" in messages["NNL501"]
    assert "`running += loss`" in messages["NNL505"] and "loss.item()" in messages["NNL505"]
    assert "5e-2" in messages["NNL509"]


def test_facts_are_built_once_per_file_and_not_for_files_without_torch(monkeypatch):
    built = []
    original = loopfacts.LoopFacts.__init__

    def counting(self, ctx):
        built.append(ctx.path)
        original(self, ctx)

    monkeypatch.setattr(loopfacts.LoopFacts, "__init__", counting)
    _lint("import torch\nfor x in loader:\n    model(x).sum().backward()\n    optimizer.step()\n")
    assert built == ["train.py"]
    assert _lint("import jax\nfor x in loader:\n    loss.backward()\n    optimizer.step()\n") == []
    assert built == ["train.py"]


def test_eval_mode_set_by_a_caller_two_levels_up_counts():
    text = (
        "import torch\n"
        "@torch.no_grad()\n"
        "def evaluate(model, loader):\n"
        "    for x, y in loader:\n"
        "        model(x)\n"
        "def run_validation(model):\n"
        "    return evaluate(model, val_loader)\n"
        "def fit(model):\n"
        "    for epoch in range(3):\n"
        "        model.train()\n"
        "        train_epoch(model)\n"
        "        model.eval()\n"
        "        run_validation(model)\n"
    )
    assert _lint(text) == []
    # Without the caller's eval() the evaluation loop is reported once, at the model call.
    found = _lint(text.replace("        model.eval()\n", ""))
    assert [(d.code, d.line) for d in found] == [("NNL502", 5)]


def test_forward_call_outside_torch_files_and_framework_receivers_is_not_reported():
    assert _lint("out = model.forward(x)\n") == []
    text = "import torch\nresult = self._kernel_obj.forward(x)\n"
    assert _lint(text) == []
