"""Shape rules (NNL3): what the example test cannot express — messages and the no-torch constraint."""

from __future__ import annotations

import subprocess
import sys

from nnlint.engine import lint_text

ALL_SHAPES = frozenset({"NNL301", "NNL302", "NNL303", "NNL304", "NNL305", "NNL306", "NNL307"})


def _messages(source: str) -> list[tuple[int, str, str]]:
    return [(d.line, d.code, d.message) for d in lint_text(source, "m.py", ALL_SHAPES).diagnostics]


def test_reshape_message_names_source_and_dims():
    [(line, code, message)] = _messages("def f(x):\n    b, h, w = x.shape\n    return x.view(b, w, h)\n")
    assert (line, code) == (3, "NNL301")
    assert "`x`" in message and "dim 1 after dim 2" in message and "permute" in message


def test_factory_assigned_then_never_moved_is_reported_at_the_factory():
    source = (
        "import torch\nfrom torch import nn\nclass M(nn.Module):\n    def forward(self, x):\n"
        "        mask = torch.ones(4, 4)\n        y = x * 2\n        return y @ mask\n"
    )
    assert [(line, code) for line, code, _ in _messages(source)] == [(5, "NNL307")]


def test_module_base_defined_in_the_same_file_counts():
    source = (
        "import torch\nfrom torch import nn\nclass Base(nn.Module):\n    pass\nclass M(Base):\n"
        "    def forward(self, x):\n        return self.fc(x).squeeze()\n"
    )
    assert [(line, code) for line, code, _ in _messages(source)] == [(7, "NNL304")]


def test_shape_rules_do_not_import_torch():
    code = "import sys, nnlint.static.shapes, nnlint.static.dataflow_shapes; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


SOFTMAXES = ("import torch.nn.functional as F\nfrom torch import nn\n"
             "p = F.softmax(logits)\nhead = nn.Softmax()\n")


def _softmax_findings():
    from nnlint.diagnostics import Applicability

    found = lint_text(SOFTMAXES, "m.py", frozenset({"NNL302"})).diagnostics
    assert [d.line for d in found] == [3, 4]
    assert all(d.fix and d.fix.applicability == Applicability.UNSAFE for d in found)
    return found


def _fixed(diagnostics) -> str:
    from nnlint.fixes import apply_edits

    return apply_edits(SOFTMAXES, [e for d in diagnostics if d.fix for e in d.fix.edits])


def test_traced_rank_makes_the_softmax_fix_torchs_own_choice():
    from nnlint.diagnostics import Applicability
    from nnlint.static.shapes import SoftmaxImplicitDim

    found = _softmax_findings()
    for rank, dim in ((1, "-1"), (2, "-1"), (4, "1"), (5, "1")):
        refined = [SoftmaxImplicitDim.with_traced_rank(d, rank) for d in found]
        assert all(d.fix and d.fix.applicability == Applicability.SAFE for d in refined), rank
        assert all(f"{rank}-D" in d.fix.message for d in refined if d.fix)
        fixed = _fixed(refined)
        assert f"F.softmax(logits, dim={dim})" in fixed and f"nn.Softmax(dim={dim})" in fixed, fixed
    three_d = [SoftmaxImplicitDim.with_traced_rank(d, 3) for d in found]
    assert all(d.fix and d.fix.applicability == Applicability.UNSAFE for d in three_d)
    assert all("3-D" in d.message and "dim 0" in d.message and len(d.message) <= 200 for d in three_d)
    assert "F.softmax(logits, dim=-1)" in _fixed(three_d)
    assert [SoftmaxImplicitDim.with_traced_rank(d, 0) for d in found] == found  # a scalar: left as is


def test_softmax_fix_needs_every_traced_run_of_that_call_to_agree():
    from nnlint.check import with_traced_facts
    from nnlint.diagnostics import Applicability
    from nnlint.observations import SoftmaxRank

    call, module = _softmax_findings()

    def seen(d, rank, column=None):
        return SoftmaxRank(d.path, d.line, column or d.column, d.end_line, d.end_column, rank)

    def levels(facts):
        return [d.fix.applicability if d.fix else None for d in with_traced_facts([call, module], facts)]

    safe, unsafe = Applicability.SAFE, Applicability.UNSAFE
    assert levels([seen(call, 2), seen(call, 2), seen(module, 4)]) == [safe, safe]
    assert levels([seen(call, 2), seen(call, 3)]) == [unsafe, unsafe]  # runs disagree
    assert levels([seen(call, 2), seen(call, None)]) == [unsafe, unsafe]  # one ran on a guessed input
    assert levels([seen(call, 2, column=1)]) == [unsafe, unsafe]  # another call on the same line
    assert levels([]) == [unsafe, unsafe]
