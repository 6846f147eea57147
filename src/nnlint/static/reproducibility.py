"""NNL2: reproducibility. Unseeded training, half-seeded RNGs, cuDNN autotuning in seeded scripts."""

from __future__ import annotations

import libcst as cst

from nnlint.diagnostics import Severity
from nnlint.imports import dotted_name
from nnlint.rule import StaticRule
from nnlint.static.facts.names import final_name
from nnlint.static.rng import (
    DRAW_NAMES, NUMPY, NUMPY_DRAWS, PYTHON, PYTHON_DRAWS, TORCH, TORCH_DRAWS, TORCH_ONLY, TrainingCalls, is_main_guard,
    seeded_rngs,
)


class MissingSeed(StaticRule):
    """A script trains a model but never seeds torch: every run starts from different weights and batches.

    Weight initialization, dropout masks and shuffled batch order all draw from torch's global RNG, so
    two runs of the same script give different results and a regression cannot be told from noise.
    Call `torch.manual_seed(seed)` (or Lightning's `seed_everything(seed)`, transformers'
    `set_seed(seed)`) once, before the model is built. Reported once per file, at the first training call.
    Only scripts are checked (a `__main__` block, training at top level, or a top-level call such
    as `main()`): modules that only define models and training helpers leave seeding to their caller.
    """

    code = "NNL201"
    name = "missing-seed"
    severity = Severity.WARNING
    VALID = (
        "import torch\ntorch.manual_seed(0)\nmodel = torch.nn.Linear(2, 1)\n"
        "opt = torch.optim.SGD(model.parameters(), lr=0.1)\nmodel(torch.randn(4, 2)).sum().backward()\nopt.step()\n",
        "import torch\nimport lightning as L\nL.seed_everything(42)\ntrainer = L.Trainer()\ntrainer.fit(model)\n",
        "import torch\nfrom transformers import set_seed\nset_seed(1)\n"
        "opt = torch.optim.AdamW(model.parameters())\nloss.backward()\n",
        # a local helper that seeds
        "import random\nimport torch\n\ndef seed_all(s):\n    random.seed(s)\n    torch.manual_seed(s)\n\n"
        "def main():\n    seed_all(0)\n    opt = torch.optim.SGD(model.parameters(), lr=0.1)\n    loss.backward()\n",
        # a library helper: no optimizer built, no script entry point
        "def backward(self, loss):\n    loss.backward()\n",
        # no training at all
        "import torch\nmodel = torch.nn.Linear(2, 1)\nprint(model(torch.zeros(1, 2)))\n",
        # a module of models: configure_optimizers builds one, but whoever trains them seeds
        "import torch\nfrom lightning import LightningModule\n\nclass Manual(LightningModule):\n"
        "    def configure_optimizers(self):\n        return torch.optim.SGD(self.parameters(), lr=0.1)\n\n"
        "    def training_step(self, batch, i):\n        opt = self.optimizers()\n        opt.step()\n",
        # scheduler.step() is not training
        "import torch\nsched = torch.optim.lr_scheduler.StepLR(opt, 1)\nsched.step()\n",
    )
    INVALID = (
        "import torch\nmodel = torch.nn.Linear(2, 1)\nopt = torch.optim.SGD(model.parameters(), lr=0.1)\n"
        "loss = model(torch.randn(4, 2)).sum()\nloss.backward()  # <-\nopt.step()\nloss.backward()\n",
        "import numpy as np\nimport torch\nnp.random.seed(0)\n\ndef train(model, loader, optimizer):\n"
        "    for x, y in loader:\n        optimizer.step()  # <-\n\nif __name__ == '__main__':\n    train(m, dl, o)\n",
        "import lightning as L\ntrainer = L.Trainer(max_epochs=3)\ntrainer.fit(model)  # <-\n",
        "from pytorch_lightning import Trainer\nTrainer().fit(model, dm)  # <-\n",
    )

    def __init__(self, ctx):
        super().__init__(ctx)
        self.training = TrainingCalls()
        self.first_training: cst.Call | None = None
        self.depth = 0  # inside how many defs/classes
        self.top_level_training = False
        self.script = False  # a __main__ block or a top-level `main()`
        self.seeds_torch = False

    def visit_FunctionDef(self, node) -> None:
        self.depth += 1

    def leave_FunctionDef(self, node) -> None:
        self.depth -= 1

    def visit_ClassDef(self, node) -> None:
        self.depth += 1

    def leave_ClassDef(self, node) -> None:
        self.depth -= 1

    def visit_If(self, node: cst.If) -> None:
        if self.depth == 0 and is_main_guard(node.test):
            self.script = True

    def visit_Expr(self, node: cst.Expr) -> None:
        if self.depth == 0 and isinstance(node.value, cst.Call) and isinstance(node.value.func, cst.Name):
            self.script = True

    def visit_Assign(self, node: cst.Assign) -> None:
        value = node.value
        # Optimizers and trainers are classes: a capitalized name is the cheap test before resolving.
        if isinstance(value, cst.Call) and len(node.targets) == 1 and (final_name(value.func) or "")[:1].isupper():
            target = dotted_name(node.targets[0].target)
            if target is not None:
                self.training.note_assign(target, self.ctx.call_name(value))

    def visit_Call(self, node: cst.Call) -> None:
        if self.seeds_torch:
            return
        if TORCH in seeded_rngs(node, self.ctx.qualname):
            self.seeds_torch = True
            return
        if self.training.is_training(node, self.ctx.qualname):
            if self.first_training is None:
                self.first_training = node
            if self.depth == 0:
                self.top_level_training = True

    def leave_Module(self, node) -> None:
        if self.seeds_torch or self.first_training is None:
            return
        if self.script or self.top_level_training:
            call = self._describe(self.first_training)
            self.report(self.first_training, f"`{call}` trains but this file never seeds torch: call "
                        "`torch.manual_seed(seed)` (or `seed_everything(seed)`) before building the model")

    def _describe(self, call: cst.Call) -> str:
        """`loss.backward()`, `Trainer(...).fit()`: the call, without its arguments."""
        func = call.func
        code = self.ctx.module.code_for_node(func)
        if len(code) > 40 and isinstance(func, cst.Attribute) and isinstance(func.value, cst.Call):
            return f"{final_name(func.value.func)}(...).{func.attr.value}()"
        return f"{code}()"


class PartialSeed(StaticRule):
    """The file seeds torch but draws from Python's or numpy's global RNG without seeding it (or the reverse).

    Seeding only torch leaves `random.shuffle`, `np.random.rand` and friends different on every run,
    so data order, augmentation or splits still change and the run is not reproducible after all.
    Seed every global RNG you use (`random.seed(s)`, `np.random.seed(s)`, `torch.manual_seed(s)`, or
    one `seed_everything(s)`), or use an explicitly seeded generator such as `np.random.default_rng(s)`.
    """

    code = "NNL202"
    name = "partial-seed"
    severity = Severity.WARNING
    VALID = (
        "import random\nimport numpy as np\nimport torch\n"
        "random.seed(0)\nnp.random.seed(0)\ntorch.manual_seed(0)\nrandom.shuffle(xs)\nnoise = np.random.rand(3)\n",
        "import numpy as np\nimport torch\ntorch.manual_seed(0)\nrng = np.random.default_rng(0)\nx = rng.random(3)\n",
        "import random\nimport torch\n\ndef seed_all(s):\n    random.seed(s)\n    torch.manual_seed(s)\n\n"
        "seed_all(0)\nrandom.shuffle(files)\n",
        "import random\nimport torch\nfrom lightning import seed_everything\nseed_everything(0)\nrandom.choice(xs)\n",
        "import random\nimport torch\nrng = random.Random(0)\ntorch.manual_seed(0)\nrng.shuffle(xs)\n",
        # a layer seeding numpy for its own fixed pattern is no reproducibility setup of the file
        "import numpy as np\nimport torch\n\nclass SparseAttention:\n    def plan(self, seed):\n"
        "        np.random.seed(seed)\n\n    def drop(self):\n        return torch.rand([]) < 0.1\n",
        # seeds nothing: NNL201's business if it trains
        "import random\nimport torch\nrandom.shuffle(xs)\nx = torch.rand(3)\n",
    )
    INVALID = (
        "import random\nimport torch\ntorch.manual_seed(0)\nrandom.shuffle(files)  # <-\nrandom.shuffle(more)\n",
        "import numpy as np\nimport torch\ntorch.manual_seed(0)\nnoise = np.random.randn(8)  # <-\n",
        "import numpy as np\nimport random\nimport torch\ntorch.manual_seed(1)\nrandom.seed(1)\n"
        "idx = np.random.permutation(10)  # <-\nj = random.randint(0, 3)\n",
        # the reverse: numpy seeded, torch's RNG used unseeded
        "import numpy as np\nimport torch\nnp.random.seed(0)\nmask = torch.rand(4) > 0.5  # <-\n",
    )

    def __init__(self, ctx):
        super().__init__(ctx)
        self.seeded: set[str] = set()  # seeded anywhere
        self.setup_seeded: set[str] = set()  # seeded outside classes: the file's reproducibility setup
        self.class_depth = 0
        self.torch_seeded_explicitly = False
        self.first_draw: dict[str, cst.Call] = {}
        self.trains = False
        self.training = TrainingCalls()

    def visit_ClassDef(self, node) -> None:
        self.class_depth += 1

    def leave_ClassDef(self, node) -> None:
        self.class_depth -= 1

    def visit_Call(self, node: cst.Call) -> None:
        seeds = seeded_rngs(node, self.ctx.qualname)
        if seeds:
            self.seeded |= seeds
            # A class seeding for its own purpose (e.g. a fixed attention pattern) is no reproducibility setup.
            if not self.class_depth:
                self.setup_seeded |= seeds
                if seeds == TORCH_ONLY:
                    self.torch_seeded_explicitly = True
            return
        name = self.ctx.call_name(node) if final_name(node.func) in DRAW_NAMES else None
        if name is not None:
            for rng, draws in ((PYTHON, PYTHON_DRAWS), (NUMPY, NUMPY_DRAWS), (TORCH, TORCH_DRAWS)):
                if name in draws:
                    self.first_draw.setdefault(rng, node)
                    return
        if not self.trains and self.training.is_training(node, self.ctx.qualname):
            self.trains = True

    def leave_Module(self, node) -> None:
        if TORCH in self.setup_seeded:
            if not self.torch_seeded_explicitly:
                return  # seeded through a helper that may well seed every RNG
            for rng, label, how in ((PYTHON, "Python's `random`", "random.seed(seed)"),
                                    (NUMPY, "numpy's legacy", "np.random.seed(seed)")):
                call = self.first_draw.get(rng)
                if call is not None and rng not in self.seeded:
                    self._report(call, f"torch is seeded but {label} global RNG is not", how)
        elif self.setup_seeded and TORCH not in self.seeded and TORCH in self.first_draw and not self.trains:
            # When the file trains, NNL201 already says torch is unseeded.
            seeded = " and ".join(label for rng, label in ((PYTHON, "Python's"), (NUMPY, "numpy's"))
                                  if rng in self.setup_seeded)
            self._report(self.first_draw[TORCH], f"{seeded} RNG is seeded but torch's global RNG is not",
                         "torch.manual_seed(seed)")

    def _report(self, call: cst.Call, what: str, fix: str) -> None:
        drawn = self.ctx.module.code_for_node(call.func)
        self.report(call, f"{what}, so `{drawn}(...)` differs on every run: also call `{fix}`")


_BENCHMARK = "torch.backends.cudnn.benchmark"
_DETERMINISTIC = "torch.backends.cudnn.deterministic"


class NondeterministicCudnn(StaticRule):
    """The file seeds for reproducibility but lets cuDNN pick kernels nondeterministically.

    `torch.backends.cudnn.benchmark = True` times several convolution algorithms on the first batches
    and keeps the fastest, which can differ between runs; `cudnn.deterministic = False` allows
    nondeterministic kernels. Either way seeded runs on GPU still diverge. When reproducibility
    matters set `benchmark = False` and `deterministic = True` (or `torch.use_deterministic_algorithms(True)`).
    Settings chosen under an `if` in a file that also has the deterministic settings are treated as a switch.
    """

    code = "NNL203"
    name = "nondeterministic-cudnn"
    severity = Severity.INFO
    VALID = (
        "import torch\ntorch.manual_seed(0)\ntorch.backends.cudnn.benchmark = False\n"
        "torch.backends.cudnn.deterministic = True\n",
        "import torch\ntorch.backends.cudnn.benchmark = True\n",  # not seeded: speed is the goal
        "import torch\ntorch.manual_seed(0)\nif args.deterministic:\n    torch.backends.cudnn.deterministic = True\n"
        "else:\n    torch.backends.cudnn.benchmark = True\n",
        "import torch\ntorch.manual_seed(0)\ntorch.backends.cudnn.benchmark = args.benchmark\n",
        "import torch\nimport cudnn\ntorch.manual_seed(0)\ncudnn.benchmark = True\n",  # not torch's cudnn
    )
    INVALID = (
        "import torch\ntorch.manual_seed(0)\ntorch.backends.cudnn.benchmark = True  # <-\n",
        "from torch.backends import cudnn\nfrom lightning import seed_everything\nseed_everything(7)\n"
        "cudnn.deterministic = False  # <-\n",
        "import torch\n\ndef setup(seed):\n    torch.manual_seed(seed)\n    if torch.cuda.is_available():\n"
        "        torch.backends.cudnn.benchmark = True  # <-\n",
    )

    def __init__(self, ctx):
        super().__init__(ctx)
        self.seeds_torch = False
        self.chooses_determinism = False
        self.if_depth = 0
        self.candidates: list[tuple[cst.Assign, bool]] = []  # (assignment, under an if)

    def visit_If(self, node) -> None:
        self.if_depth += 1

    def leave_If(self, node) -> None:
        self.if_depth -= 1

    def visit_Call(self, node: cst.Call) -> None:
        if not self.seeds_torch and TORCH in seeded_rngs(node, self.ctx.qualname):
            self.seeds_torch = True
        elif (isinstance(node.func, cst.Attribute) and node.func.attr.value == "use_deterministic_algorithms"
              and node.args and _is_literal(node.args[0].value, "True")):
            self.chooses_determinism = True

    def visit_Assign(self, node: cst.Assign) -> None:
        target = node.targets[0].target
        if not isinstance(target, cst.Attribute) or target.attr.value not in ("benchmark", "deterministic"):
            return
        setting = self.ctx.qualname(target)
        if setting == _BENCHMARK:
            nondeterministic = _is_literal(node.value, "True")
            self.chooses_determinism |= _is_literal(node.value, "False")
        elif setting == _DETERMINISTIC:
            nondeterministic = _is_literal(node.value, "False")
            self.chooses_determinism |= _is_literal(node.value, "True")
        else:
            return
        if nondeterministic:
            self.candidates.append((node, self.if_depth > 0))

    def leave_Module(self, node) -> None:
        if not self.seeds_torch:
            return
        for assign, conditional in self.candidates:
            if conditional and self.chooses_determinism:
                continue
            written = self.ctx.module.code_for_node(assign.targets[0].target)
            value = self.ctx.module.code_for_node(assign.value)
            self.report(assign, f"`{written} = {value}` makes this seeded script nondeterministic on GPU: "
                        "set benchmark = False and deterministic = True when reproducibility matters")


def _is_literal(expr: cst.BaseExpression, value: str) -> bool:
    return isinstance(expr, cst.Name) and expr.value == value
