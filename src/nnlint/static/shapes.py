"""NNL3: shape smells visible in the source."""

from __future__ import annotations

import libcst as cst

from nnlint.diagnostics import Severity
from nnlint.rule import StaticRule
from nnlint.static.calls import has_arg

_SOFTMAX_FUNCTIONS = frozenset(
    {
        "torch.softmax", "torch.log_softmax", "torch.special.softmax", "torch.special.log_softmax",
        "torch.nn.functional.softmax", "torch.nn.functional.log_softmax",
        "torch.nn.functional.softmin",
    }
)
_SOFTMAX_MODULES = frozenset({"torch.nn.Softmax", "torch.nn.LogSoftmax", "torch.nn.Softmin"})


class SoftmaxImplicitDim(StaticRule):
    """Softmax without an explicit `dim`: torch guesses the dimension by a legacy rule.

    `F.softmax(x)`, `nn.Softmax()` and friends without `dim` pick dim 0 for 0-, 1- and 3-D
    inputs and dim 1 otherwise, and only warn. On a `(batch, classes)` tensor that happens to be right,
    but on a 3-D `(batch, seq, vocab)` tensor it normalizes over the batch, and the model still trains.
    Always pass `dim`, usually `dim=-1`.
    """

    code = "NNL302"
    name = "softmax-implicit-dim"
    severity = Severity.WARNING
    VALID = (
        "import torch.nn.functional as F\nprobs = F.softmax(logits, dim=-1)\n",
        "import torch\nprobs = torch.softmax(logits, 1)\n",
        "from torch import nn\nhead = nn.Softmax(dim=1)\n",
        "import torch.nn.functional as F\nprobs = F.softmax(logits, -1, _stacklevel=5)\n",
        "from scipy.special import softmax\np = softmax(scores)\n",
    )
    INVALID = (
        "import torch.nn.functional as F\nprobs = F.softmax(logits)  # <-\n",
        "from torch.nn import functional\nlogp = functional.log_softmax(logits)  # <-\n",
        "import torch as T\nhead = T.nn.Softmax()  # <-\n",
        "from torch import nn\nlayer = nn.LogSoftmax()  # <-\n",
        "import torch.nn.functional as F\np = F.softmax(x, _stacklevel=5)  # <-\n",
    )

    def visit_Call(self, node: cst.Call) -> None:
        name = self.ctx.call_name(node)
        if name in _SOFTMAX_FUNCTIONS and not has_arg(node, 1, "dim"):
            self.report(node, f"`{name.rsplit('.', 1)[1]}` called without `dim`: pass it explicitly (usually dim=-1)")
        elif name in _SOFTMAX_MODULES and not has_arg(node, 0, "dim"):
            self.report(node, f"`nn.{name.rsplit('.', 1)[1]}()` without `dim`: pass it explicitly (usually dim=-1)")
