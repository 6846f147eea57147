"""NNL4: losses fed the wrong kind of tensor, and numerically fragile log-probabilities."""

from __future__ import annotations

import libcst as cst

from nnlint.diagnostics import Severity
from nnlint.rule import Invalid, NodeFix, StaticRule
from nnlint.static import flow
from nnlint.static.calls import get_arg
from nnlint.static.facts.lossflow import LossFlowFacts
from nnlint.static.facts.names import final_name


class _LossFlowRule(StaticRule):
    """Reports the findings of the shared flow analysis that belong to one loss family.

    Each rule notes whether the file mentions its loss at all (a cheap name test); the analysis runs
    at the end, once per file for all of them (`LossFlowFacts`), and only if some loss is mentioned.
    """

    family: str
    kinds: frozenset[str]
    uses = (LossFlowFacts,)

    def __init__(self, ctx):
        super().__init__(ctx)
        self._triggers = flow.TRIGGER_NAMES[self.family]
        self._mentioned = False

    def visit_Call(self, node: cst.Call) -> None:
        if not self._mentioned and final_name(node.func) in self._triggers:
            self._mentioned = True

    def visit_ImportAlias(self, node: cst.ImportAlias) -> None:
        if not self._mentioned and final_name(node.name) in self._triggers:
            self._mentioned = True

    def leave_Module(self, node: cst.Module) -> None:
        if not self._mentioned:
            return
        for finding in self.ctx.facts(LossFlowFacts).analysis().findings.values():
            if finding.family == self.family and finding.kind in self.kinds:
                self.report(finding.call, finding.message)


class SoftmaxIntoCrossEntropy(_LossFlowRule):
    """Softmax output passed to cross-entropy, which applies log-softmax itself.

    `nn.CrossEntropyLoss` and `F.cross_entropy` expect raw logits: they compute `log_softmax`
    internally. Feeding them probabilities (from `softmax`, or a model whose last layer is
    `nn.Softmax`) squashes the logits into [0, 1], so the loss barely moves and gradients vanish:
    the model trains slowly or not at all, without any error. Log-probabilities are normalised a
    second time, which is redundant and hides what the model outputs. Pass the raw logits and apply
    softmax only where probabilities are needed (metrics, inference). Models returning a tuple
    (a GAN discriminator's `(validity, softmax_label)`) are followed element by element.
    """

    code = "NNL401"
    name = "softmax-into-cross-entropy"
    severity = Severity.ERROR
    family = flow.CROSS_ENTROPY
    kinds = frozenset({flow.SOFTMAX, flow.LOGPROB})
    VALID = (
        "import torch.nn.functional as F\nlogits = model(x)\nloss = F.cross_entropy(logits, y)\n"
        "probs = F.softmax(logits, dim=-1)\n",
        "import torch.nn as nn\nimport torch.nn.functional as F\ncriterion = nn.CrossEntropyLoss()\n"
        "def step(x, y):\n    out = F.softmax(x, dim=1)\n    out = x\n    return criterion(out, y)\n",
        # Not torch's functions: `F` and `softmax` come from elsewhere.
        "import mylib as F\nfrom scipy.special import softmax\nloss = F.cross_entropy(softmax(z), y)\n",
        # Only one branch produces probabilities: unclear, so not reported.
        "import torch.nn.functional as F\ndef f(x, y, p):\n    if p:\n        x = F.softmax(x, dim=1)\n"
        "    return F.cross_entropy(x, y)\n",
        # A parameter shadows the module-level softmax output.
        "import torch\nimport torch.nn.functional as F\nout = torch.softmax(z, 1)\n"
        "def f(out, y):\n    return F.cross_entropy(out, y)\n",
        # The head is replaced from outside the class, so its forward is not trusted.
        "import torch.nn as nn\nimport torch.nn.functional as F\nclass Net(nn.Module):\n"
        "    def __init__(self):\n        super().__init__()\n        self.head = nn.Softmax(dim=1)\n"
        "    def forward(self, x):\n        return self.head(x)\nmodel = Net()\nmodel.head = nn.Identity()\n"
        "loss = F.cross_entropy(model(x), y)\n",
        # A tuple output: the element fed to cross-entropy is the logits; the softmax one is for display.
        "import torch.nn as nn\nclass Head(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
        "        self.fc = nn.Linear(8, 3)\n        self.soft = nn.Softmax(dim=1)\n"
        "    def forward(self, x):\n        logits = self.fc(x)\n        return logits, self.soft(logits)\n"
        "criterion = nn.CrossEntropyLoss()\nlogits, probs = Head()(x)\nloss = criterion(logits, y)\n"
        "out = Head()(x)\nloss = criterion(out[0], y)\n",
    )
    INVALID = (
        "import torch.nn.functional as F\nprobs = F.softmax(logits, dim=1)\nloss = F.cross_entropy(probs, y)  # <-\n",
        "import torch\nfrom torch import nn\ncriterion = nn.CrossEntropyLoss()\ndef train_step(model, x, y):\n"
        "    out = torch.softmax(model(x), dim=-1)\n    loss = criterion(out, y)  # <-\n    return loss\n",
        "import torch.nn as nn\nimport torch.nn.functional as F\nclass Net(nn.Module):\n"
        "    def __init__(self):\n        super().__init__()\n"
        "        self.layers = nn.Sequential(nn.Linear(4, 3), nn.Softmax(dim=1))\n"
        "    def forward(self, x):\n        return self.layers(x)\n"
        "model = Net()\nloss = F.cross_entropy(model(x), y)  # <-\n",
        "import torch.nn as nn\nclass Classifier(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
        "        self.fc = nn.Linear(8, 2)\n        self.loss_fn = nn.CrossEntropyLoss()\n"
        "    def forward(self, x):\n        return self.fc(x).log_softmax(dim=-1)\n"
        "    def training_step(self, batch):\n        x, y = batch\n"
        "        return self.loss_fn(self(x), y)  # <-\n",
        # PyTorch-GAN's ACGAN: the discriminator returns (validity, softmax label)
        "import torch.nn as nn\nclass Discriminator(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
        "        self.adv = nn.Sequential(nn.Linear(128, 1), nn.Sigmoid())\n"
        "        self.aux = nn.Sequential(nn.Linear(128, 10), nn.Softmax(dim=1))\n"
        "    def forward(self, x):\n        return self.adv(x), self.aux(x)\n"
        "auxiliary_loss = nn.CrossEntropyLoss()\ndiscriminator = Discriminator()\n"
        "validity, label = discriminator(imgs)\nloss = auxiliary_loss(label, labels)  # <-\n"
        "loss = auxiliary_loss(discriminator(imgs)[1], labels)  # <-\n",
    )


class SigmoidIntoBce(_LossFlowRule):
    """`BCELoss` on sigmoid output: use `BCEWithLogitsLoss` on the logits.

    `sigmoid` saturates to exactly 0 or 1 in float32 for logits beyond about +-17; `BCELoss` then
    has to clamp `log(0)` to -100, so confident mistakes get a capped loss and no useful gradient.
    `nn.BCEWithLogitsLoss` / `F.binary_cross_entropy_with_logits` fuse the sigmoid into the loss with
    the log-sum-exp trick and stay exact. Drop the final sigmoid and pass the logits.
    """

    code = "NNL403"
    name = "sigmoid-into-bce"
    severity = Severity.WARNING
    family = flow.BCE
    kinds = frozenset({flow.SIGMOID})
    VALID = (
        "import torch.nn as nn\ncriterion = nn.BCEWithLogitsLoss()\nloss = criterion(model(x), y)\n",
        "import torch\nimport torch.nn.functional as F\n"
        "loss = F.binary_cross_entropy_with_logits(logits, y)\npreds = torch.sigmoid(logits) > 0.5\n",
        "import torch.nn.functional as F\nloss = F.binary_cross_entropy(probs, y)\n",
        "from mylib import F\nimport torch\nloss = F.binary_cross_entropy(torch.sigmoid(z), y)\n",
    )
    INVALID = (
        "import torch\nimport torch.nn.functional as F\nloss = F.binary_cross_entropy(torch.sigmoid(z), y)  # <-\n",
        "import torch.nn as nn\nclass Net(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
        "        self.body = nn.Sequential(nn.Linear(4, 1), nn.Sigmoid())\n"
        "    def forward(self, x):\n        return self.body(x).squeeze(1)\n"
        "def main(x, y):\n    model = Net().to('cpu')\n    criterion = nn.BCELoss()\n"
        "    pred = model(x)\n    loss = criterion(pred, y)  # <-\n",
        "import torch\nfrom torch.nn.functional import binary_cross_entropy\nscores = logits.sigmoid()\n"
        "loss = binary_cross_entropy(scores, labels)  # <-\n",
    )


class NllWithoutLogSoftmax(_LossFlowRule):
    """`NLLLoss` on raw logits or softmax probabilities instead of log-probabilities.

    `nn.NLLLoss` / `F.nll_loss` only pick `-input[target]`: they expect log-probabilities from
    `log_softmax`. On raw logits the loss is unbounded below and the model learns to inflate one
    output; on softmax probabilities it minimises `-p` instead of `-log p`, a much weaker signal.
    Neither raises an error. Apply `log_softmax(dim=1)` first, or use `cross_entropy` on the logits.
    """

    code = "NNL404"
    name = "nll-without-log-softmax"
    severity = Severity.ERROR
    family = flow.NLL
    kinds = frozenset({flow.SOFTMAX, flow.LOGITS})
    VALID = (
        "import torch.nn.functional as F\nlogp = F.log_softmax(logits, dim=1)\nloss = F.nll_loss(logp, y)\n",
        "import torch\nimport torch.nn.functional as F\nloss = F.nll_loss(torch.log(probs), y)\n",
        "import torch.nn as nn\nclass Net(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
        "        self.fc = nn.Linear(4, 3)\n        self.out = nn.LogSoftmax(dim=1)\n"
        "    def forward(self, x):\n        return self.out(self.fc(x))\n"
        "net = Net()\nloss = nn.NLLLoss()(net(x), y)\n",
        # GaussianNLLLoss is a different loss.
        "import torch.nn as nn\nfc = nn.Linear(4, 1)\nloss = nn.GaussianNLLLoss()(fc(x), y, var)\n",
    )
    INVALID = (
        "import torch.nn as nn\nclass Net(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
        "        self.fc = nn.Linear(4, 3)\n    def forward(self, x):\n        return self.fc(x)\n"
        "net = Net()\ncriterion = nn.NLLLoss()\nloss = criterion(net(x), y)  # <-\n",
        "import torch.nn.functional as F\nprobs = F.softmax(logits, dim=-1)\nloss = F.nll_loss(probs, y)  # <-\n",
        "import torch.nn as nn\nimport torch.nn.functional as F\nhead = nn.Linear(16, 10)\n"
        "def step(h, y):\n    logits = head(h).view(-1, 10)\n    return F.nll_loss(logits, y)  # <-\n",
    )


_LOG_SOURCES = {
    "torch.softmax": "log_softmax", "torch.nn.functional.softmax": "log_softmax",
    "torch.special.softmax": "log_softmax", "torch.Tensor.softmax": "log_softmax",
    "torch.sigmoid": "F.logsigmoid", "torch.nn.functional.sigmoid": "F.logsigmoid",
    "torch.special.expit": "F.logsigmoid", "torch.Tensor.sigmoid": "F.logsigmoid",
}
_LOG_SOURCE_METHODS = {"softmax": "log_softmax", "sigmoid": "F.logsigmoid"}


class LogOfSoftmax(StaticRule):
    """`log` of a softmax or sigmoid: underflows to -inf; use `log_softmax` / `F.logsigmoid`.

    Softmax and sigmoid round small probabilities to exactly 0 in float32 (and far sooner in
    half precision); `torch.log` of 0 is -inf, and the loss or gradient becomes inf/NaN. The fused
    `F.log_softmax(x, dim)` and `F.logsigmoid(x)` compute the same values stably. The fix rewrites
    `log(x.softmax(...))` and `log(F.softmax(...))` into the same call of `log_softmax`.
    """

    code = "NNL402"
    name = "log-of-softmax"
    severity = Severity.WARNING
    fixable = True
    VALID = (
        "import torch.nn.functional as F\nlogp = F.log_softmax(x, dim=-1)\n",
        "import torch\nimport torch.nn.functional as F\nlogp = torch.log(F.softmax(x, dim=-1) + 1e-8)\n",
        "import torch.nn.functional as F\nls = F.logsigmoid(x)\n",
        "import numpy as np\nfrom scipy.special import softmax\nlogp = np.log(softmax(x))\n",
        "import mylib as F\nimport torch\nlogp = torch.log(F.softmax(x, 1))\n",
    )
    INVALID = (
        Invalid("import torch\nimport torch.nn.functional as F\nlogp = torch.log(F.softmax(x, dim=1))  # <-\n",
                fixed="import torch\nimport torch.nn.functional as F\nlogp = F.log_softmax(x, dim=1)\n"),
        Invalid("import torch.nn.functional as F\nlogp = F.softmax(x, dim=-1).log()  # <-\n",
                fixed="import torch.nn.functional as F\nlogp = F.log_softmax(x, dim=-1)\n"),
        # No fused sigmoid in torch's namespace: the message names F.logsigmoid, nothing is rewritten.
        Invalid("import torch\nls = torch.log(torch.sigmoid(x))  # <-\n",
                fixed="import torch\nls = torch.log(torch.sigmoid(x))\n"),
        Invalid("import torch\nlogp = torch.log(scores.softmax(dim=-1))  # <-\n",
                fixed="import torch\nlogp = scores.log_softmax(dim=-1)\n"),
        # A bare `softmax` imported by name: `log_softmax` is not imported, so no rewrite.
        Invalid("import torch\nfrom torch.nn.functional import softmax\nlogp = torch.log(softmax(x, 1))  # <-\n",
                fixed="import torch\nfrom torch.nn.functional import softmax\nlogp = torch.log(softmax(x, 1))\n"),
    )

    def visit_Call(self, node: cst.Call) -> None:
        func = node.func
        if not isinstance(func, cst.Attribute) or func.attr.value != "log":
            return
        source: cst.BaseExpression | None
        if isinstance(func.value, cst.Call) and not node.args:
            source = func.value  # `softmax(...).log()`
        elif self.ctx.qualname(func) in ("torch.log", "torch.Tensor.log"):
            source = get_arg(node, 0, "input")
        else:
            return
        fused = self._fused_replacement(source)
        if fused is not None and isinstance(source, cst.Call):
            self.report(node, f"log of {self._describe(source)} underflows to -inf for small probabilities: "
                              f"use {fused} instead", self._fix(node, source))

    def _fix(self, node: cst.Call, source: cst.Call) -> NodeFix | None:
        """`log(<prefix>.softmax(args))` -> `<prefix>.log_softmax(args)`, when nothing else would be lost."""
        func = source.func
        if not isinstance(func, cst.Attribute) or func.attr.value != "softmax":
            return None  # sigmoid has no fused method; a bare imported name lacks its log_ sibling
        if isinstance(node.func, cst.Attribute) and node.func.value is not source and len(node.args) != 1:
            return None  # `torch.log(p, out=buf)`: more than the log itself
        fused = source.with_changes(func=func.with_changes(attr=cst.Name("log_softmax")))
        if "#" in self.ctx.module.code_for_node(node):
            return None  # a comment inside the call would be dropped
        return NodeFix("replace with log_softmax", ((node, fused),))

    def _fused_replacement(self, source: cst.BaseExpression | None) -> str | None:
        if not isinstance(source, cst.Call):
            return None
        qualname = self.ctx.qualname(source.func)
        if qualname is not None:
            return _LOG_SOURCES.get(qualname)
        if isinstance(source.func, cst.Attribute):
            return _LOG_SOURCE_METHODS.get(source.func.attr.value)
        return None

    def _describe(self, source: cst.Call) -> str:
        if self.ctx.qualname(source.func) is None:
            return f"`.{final_name(source.func)}(...)`"
        return f"`{self.ctx.module.code_for_node(source.func)}(...)`"
