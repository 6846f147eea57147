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
