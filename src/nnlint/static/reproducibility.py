"""NNL2: reproducibility. Unseeded training, half-seeded RNGs, cuDNN autotuning in seeded scripts."""

from __future__ import annotations

import libcst as cst

from nnlint.diagnostics import Applicability, Severity
from nnlint.imports import dotted_name
from nnlint.rule import Invalid, NodeFix, StaticRule
from nnlint.static import flow
from nnlint.static.calls import get_arg, positional_args
from nnlint.static.facts.names import final_name, is_optimizer_class
from nnlint.static.rewrite import statement_siblings
from nnlint.static.rng import (
    CUDA, DRAW_NAMES, NUMPY, NUMPY_DRAWS, PYTHON, PYTHON_DRAWS, TORCH, TORCH_DRAWS, TORCH_ONLY, TrainingCalls,
    is_main_guard, seeded_rngs,
)


_SEED_CALLS = {TORCH: "{}.manual_seed({})", PYTHON: "{}.seed({})", NUMPY: "{}.random.seed({})"}


def _insert_seed(ctx, anchor: cst.CSTNode, rng: str, seed: str, message: str) -> NodeFix | None:
    """A line seeding `rng` after the top-level line whose one statement is `anchor` (or calls it).

    Unsafe: seeding changes every random draw that follows, also in code that imports this file, and
    the seed value is a choice the author should see."""
    bound = ctx.imports.bound_name(rng)
    found = statement_siblings(ctx.module, anchor)
    if bound is None or found is None:
        return None
    statement = found[0][found[1]]
    if not any(s is statement for s in ctx.module.body) or statement.trailing_whitespace.comment is not None:
        return None  # nested (indentation unknown here), or a comment that would trail the new line
    small = statement.body[0]
    content = f"{ctx.module.code_for_node(small)}\n{_SEED_CALLS[rng].format(bound, seed)}"
    return NodeFix(message, ((small, content),), Applicability.UNSAFE)


def _seed_argument(ctx, call: cst.Call) -> str | None:
    args = positional_args(call)
    return ctx.module.code_for_node(args[0].value) if len(args) == 1 and len(call.args) == 1 else None


class MissingSeed(StaticRule):
    """A script trains a model but never seeds torch: every run starts from different weights and batches.

    Weight initialization, dropout masks and shuffled batch order all draw from torch's global RNG, so
    two runs of the same script give different results and a regression cannot be told from noise.
    Call `torch.manual_seed(seed)` (or Lightning's `seed_everything(seed)`, transformers'
    `set_seed(seed)`) once, before the model is built. Reported once per file, at the first training call.
    Only scripts are checked (a `__main__` block, training at top level, or a top-level call such
    as `main()`): modules that only define models and training helpers leave seeding to their caller.
    The fix (unsafe: every random draw changes) inserts `torch.manual_seed(0)` after the imports.
    """

    code = "NNL201"
    name = "missing-seed"
    severity = Severity.WARNING
    fixable = True
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
        # nothing random feeds it: a pretrained, frozen network and an image optimised from the content image
        "import torch\nfrom torchvision import models\ndef main(content):\n"
        "    vgg = models.vgg19(pretrained=True).features.eval()\n    target = content.clone().requires_grad_(True)\n"
        "    opt = torch.optim.Adam([target], lr=0.01)\n    for step in range(100):\n"
        "        loss = ((vgg(target) - vgg(content)) ** 2).mean()\n        opt.zero_grad()\n        loss.backward()\n"
        "        opt.step()\nif __name__ == '__main__':\n    main(image)\n",
    )
    INVALID = (
        Invalid("import torch\nmodel = torch.nn.Linear(2, 1)\nopt = torch.optim.SGD(model.parameters(), lr=0.1)\n"
                "loss = model(torch.randn(4, 2)).sum()\nloss.backward()  # <-\nopt.step()\nloss.backward()\n",
                fixed="import torch\ntorch.manual_seed(0)\nmodel = torch.nn.Linear(2, 1)\n"
                "opt = torch.optim.SGD(model.parameters(), lr=0.1)\n"
                "loss = model(torch.randn(4, 2)).sum()\nloss.backward()\nopt.step()\nloss.backward()\n"),
        Invalid("import numpy as np\nimport torch\n\ndef train(model, loader, optimizer):\n"
                "    for x, y in loader:\n        optimizer.step()  # <-\n\nif __name__ == '__main__':\n"
                "    train(m, dl, o)\n",
                fixed="import numpy as np\nimport torch\ntorch.manual_seed(0)\n\n"
                "def train(model, loader, optimizer):\n    for x, y in loader:\n        optimizer.step()\n\n"
                "if __name__ == '__main__':\n    train(m, dl, o)\n"),
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
        self.seeds_other = False
        self.class_depth = 0
        self.random_input = False  # something random feeds the training (see _note_randomness)
        self.tensor_optimizers = 0  # optimizers built

    def visit_FunctionDef(self, node) -> None:
        self.depth += 1

    def leave_FunctionDef(self, node) -> None:
        self.depth -= 1

    def visit_ClassDef(self, node) -> None:
        self.depth += 1
        self.class_depth += 1

    def leave_ClassDef(self, node) -> None:
        self.depth -= 1
        self.class_depth -= 1

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
        seeds = seeded_rngs(node, self.ctx.qualname)
        if TORCH in seeds:
            self.seeds_torch = True
            return
        if seeds and not self.class_depth:
            self.seeds_other = True  # only CUDA's, Python's or numpy's RNG: NNL202 says what is missing
        if not self.random_input:
            self._note_randomness(node)
        if self.training.is_training(node, self.ctx.qualname):
            if self.first_training is None:
                self.first_training = node
            if self.depth == 0:
                self.top_level_training = True

    def _note_randomness(self, call: cst.Call) -> None:
        """Whether torch's RNG can feed the training: fresh weights, random draws, dropout, shuffling,
        or an optimizer over a model's parameters (whose initial weights were drawn)."""
        last = final_name(call.func) or ""
        if not (last[:1].isupper() or last in DRAW_NAMES or "dropout" in last or last in _ZOO_BUILDERS
                or "models" in (dotted_name(call.func) or "")):
            return  # the cheap test before resolving the name
        name = self.ctx.qualname(call.func) or ""
        if is_optimizer_class(name):
            params = positional_args(call)
            tensors = params and isinstance(params[0].value, (cst.List, cst.Tuple)) and all(
                isinstance(e.value, (cst.Name, cst.Attribute)) for e in params[0].value.elements)
            self.tensor_optimizers += 1
            self.random_input |= not tensors  # a model's parameters: initialised at random
        elif name in TORCH_DRAWS or "dropout" in name.lower() or "Dropout" in name:
            self.random_input = True
        elif name.startswith("torch.nn.") and name.count(".") == 2:
            self.random_input |= not (last in _WEIGHTLESS or last.endswith("Loss"))
        elif name.startswith(("torchvision.models.", "timm.")):
            weights = get_arg(call, None, "weights") or get_arg(call, None, "pretrained")
            fresh = weights is None or (isinstance(weights, cst.Name) and weights.value in ("None", "False"))
            self.random_input |= fresh
        elif name in ("torch.utils.data.DataLoader", "torch.utils.data.dataloader.DataLoader"):
            shuffle = get_arg(call, 2, "shuffle")
            self.random_input |= not (shuffle is None or (isinstance(shuffle, cst.Name) and shuffle.value == "False"))

    def leave_Module(self, node) -> None:
        if self.seeds_torch or self.seeds_other or self.first_training is None:
            return
        if self.tensor_optimizers and not self.random_input:
            return  # optimizing given tensors (style transfer from the content image) with nothing random drawn
        if self.script or self.top_level_training:
            call = self._describe(self.first_training)
            self.report(self.first_training, f"`{call}` trains but this file never seeds torch: call "
                        "`torch.manual_seed(seed)` (or `seed_everything(seed)`) before building the model",
                        self._fix(node))

    def _fix(self, module: cst.Module) -> NodeFix | None:
        """`torch.manual_seed(0)` right after the imports at the top of the file."""
        last_import = None
        for statement in module.body:
            small = statement.body[0] if isinstance(statement, cst.SimpleStatementLine) else None
            if isinstance(small, (cst.Import, cst.ImportFrom)):
                last_import = small
            elif not (isinstance(small, cst.Expr) and isinstance(small.value, cst.SimpleString)):
                break  # the docstring may precede the imports; anything else ends them
        if last_import is None:
            return None
        return _insert_seed(self.ctx, last_import, TORCH, "0", "seed torch after the imports")

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
    The fix (unsafe: the draws change) seeds the missing RNG with the same seed, on the line after the
    top-level seeding call.
    """

    code = "NNL202"
    name = "partial-seed"
    severity = Severity.WARNING
    fixable = True
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
        # CUDA seeded as well as the CPU generator
        "import torch\ntorch.manual_seed(0)\ntorch.cuda.manual_seed_all(0)\n"
        "opt = torch.optim.SGD(m.parameters(), 0.1)\n"
        "loss.backward()\nopt.step()\n",
    )
    INVALID = (
        Invalid("import random\nimport torch\ntorch.manual_seed(0)\nrandom.shuffle(files)  # <-\nrandom.shuffle(more)\n",
                fixed="import random\nimport torch\ntorch.manual_seed(0)\nrandom.seed(0)\nrandom.shuffle(files)\n"
                "random.shuffle(more)\n"),
        Invalid("import numpy as np\nimport torch\ntorch.manual_seed(args.seed)\nnoise = np.random.randn(8)  # <-\n",
                fixed="import numpy as np\nimport torch\ntorch.manual_seed(args.seed)\nnp.random.seed(args.seed)\n"
                "noise = np.random.randn(8)\n"),
        Invalid("import numpy as np\nimport random\nimport torch\ntorch.manual_seed(1)\nrandom.seed(1)\n"
                "idx = np.random.permutation(10)  # <-\nj = random.randint(0, 3)\n",
                fixed="import numpy as np\nimport random\nimport torch\ntorch.manual_seed(1)\nnp.random.seed(1)\n"
                "random.seed(1)\nidx = np.random.permutation(10)\nj = random.randint(0, 3)\n"),
        # the reverse: numpy seeded, torch's RNG used unseeded
        Invalid("import numpy as np\nimport torch\nnp.random.seed(0)\nmask = torch.rand(4) > 0.5  # <-\n",
                fixed="import numpy as np\nimport torch\nnp.random.seed(0)\ntorch.manual_seed(0)\n"
                "mask = torch.rand(4) > 0.5\n"),
        # seeded inside a function: where the new line would go is left to the author
        Invalid("import random\nimport torch\ndef main():\n    torch.manual_seed(0)\n    random.shuffle(xs)  # <-\n",
                fixed="import random\nimport torch\ndef main():\n    torch.manual_seed(0)\n    random.shuffle(xs)\n"),
        # only the CUDA generators: weights are initialised on the CPU
        "import torch\ntorch.cuda.manual_seed_all(0)  # <-\nmodel = torch.nn.Linear(2, 1).cuda()\n"
        "opt = torch.optim.SGD(model.parameters(), lr=0.1)\nmodel(x).sum().backward()\nopt.step()\n",
        # a training script whose seed reaches only Python's and numpy's RNGs
        "import random\nimport numpy as np\nimport torch\n\ndef main(args):\n    random.seed(args.seed)  # <-\n"
        "    np.random.seed(args.seed)\n    model = torch.nn.Linear(2, 1)\n"
        "    opt = torch.optim.SGD(model.parameters(), lr=0.1)\n    model(x).sum().backward()\n    opt.step()\n",
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
        self.seed_call: dict[str, cst.Call] = {}  # the first call seeding just that RNG, outside classes

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
                if len(seeds) == 1:
                    self.seed_call.setdefault(next(iter(seeds)), node)
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
                    self._report(call, f"torch is seeded but {label} global RNG is not", how,
                                 self._fix(self.seed_call[TORCH], rng))
        elif self.trains and TORCH not in self.seeded and self.setup_seeded:
            self._report_torch_unseeded()
        elif self.setup_seeded and TORCH not in self.seeded and TORCH in self.first_draw and not self.trains:
            # When the file trains, NNL201 already says torch is unseeded.
            seeded = " and ".join(label for rng, label in ((PYTHON, "Python's"), (NUMPY, "numpy's"))
                                  if rng in self.setup_seeded)
            seeding = next((self.seed_call[r] for r in (NUMPY, PYTHON) if r in self.seed_call), None)
            self._report(self.first_draw[TORCH], f"{seeded} RNG is seeded but torch's global RNG is not",
                         "torch.manual_seed(seed)", seeding and self._fix(seeding, TORCH))

    def _report_torch_unseeded(self) -> None:
        """The file trains and seeds, but the seed never reaches torch's CPU generator."""
        if CUDA in self.seed_call:
            call = self.seed_call[CUDA]
            what = f"`{self.ctx.module.code_for_node(call.func)}` seeds only the CUDA generators"
        else:
            order = list(self.seed_call.values())
            call = min((self.seed_call[r] for r in (PYTHON, NUMPY) if r in self.seed_call), key=order.index)
            reached = " and ".join(label for rng, label in ((PYTHON, "Python"), (NUMPY, "numpy"))
                                   if rng in self.setup_seeded)
            what = f"the seed reaches only {reached}'s RNG"
        self.report(call, f"{what}: initial weights, dropout and shuffling draw from torch's CPU RNG, which stays "
                          "unseeded: call `torch.manual_seed(seed)` (it seeds CUDA too)")

    def _fix(self, seeding: cst.Call, rng: str) -> NodeFix | None:
        seed = _seed_argument(self.ctx, seeding)
        return _insert_seed(self.ctx, seeding, rng, seed, f"seed {rng} too") if seed else None

    def _report(self, call: cst.Call, what: str, how: str, fix: NodeFix | None) -> None:
        drawn = self.ctx.module.code_for_node(call.func)
        self.report(call, f"{what}, so `{drawn}(...)` differs on every run: also call `{how}`", fix)


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
        if not self.seeds_torch and seeded_rngs(node, self.ctx.qualname) & {TORCH, CUDA}:
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


class SeedAfterInit(StaticRule):
    """The first `torch.manual_seed` comes after the model was built, so its initial weights are not reproducible.

    Layers draw their initial weights from torch's global RNG when they are constructed. Seeding
    afterwards makes dropout and data order repeatable but not the starting point, so two runs still
    train different networks. Move the seed call before the model (and its layers) are created.
    Reported at the first seed call when a model was built earlier in the same function or script body.
    """

    code = "NNL204"
    name = "seed-after-init"
    severity = Severity.WARNING
    VALID = (
        "import torch\ntorch.manual_seed(0)\nmodel = torch.nn.Linear(2, 1)\n",
        "import torch\nimport torch.nn as nn\nclass Net(nn.Module):\n    def __init__(self):\n"
        "        super().__init__()\n        self.fc = nn.Linear(2, 1)\ndef main(seed):\n    torch.manual_seed(seed)\n"
        "    model = Net()\n",
        # a loss has no weights; re-seeding later for the data order is the second seed, not the first
        "import torch\nimport torch.nn as nn\ncriterion = nn.CrossEntropyLoss()\ntorch.manual_seed(0)\n"
        "model = nn.Linear(2, 1)\ntorch.manual_seed(1 + rank)\n",
        # built in another function: when it runs relative to the seed is not known here
        "import torch\nimport torch.nn as nn\ndef build():\n    return nn.Linear(2, 1)\ndef main():\n"
        "    torch.manual_seed(0)\n    model = build()\n",
        # seeding each step so every rank draws the same inputs is not the run's setup
        "import torch\nmodel = torch.nn.Linear(10, 1)\nfor i in range(10):\n    torch.manual_seed(i)\n"
        "    model(torch.rand(20, 10)).sum().backward()\n",
    )
    INVALID = (
        "import torch\nmodel = torch.nn.Linear(2, 1)\ntorch.manual_seed(0)  # <-\n",
        "import torch\nimport torch.nn as nn\nclass Net(nn.Module):\n    def __init__(self):\n"
        "        super().__init__()\n        self.fc = nn.Linear(2, 1)\ndef main(args):\n    model = Net().to('cpu')\n"
        "    torch.manual_seed(args.seed)  # <-\n    opt = torch.optim.SGD(model.parameters(), lr=0.1)\n",
    )

    def __init__(self, ctx):
        super().__init__(ctx)
        self.module_classes: set[str] = set()
        self.built: list[dict[str, cst.Call] | None] = [{}]  # per scope: a model built so far (None in classes)
        self.seeded = False
        self.loops = 0

    def visit_For(self, node) -> None:
        self.loops += 1

    def leave_For(self, node) -> None:
        self.loops -= 1

    def visit_While(self, node) -> None:
        self.loops += 1

    def leave_While(self, node) -> None:
        self.loops -= 1

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        if any(self._is_module_class(base.value) for base in node.bases):
            self.module_classes.add(node.name.value)
        self.built.append(None)

    def leave_ClassDef(self, node) -> None:
        self.built.pop()

    def visit_FunctionDef(self, node) -> None:
        self.built.append({})

    def leave_FunctionDef(self, node) -> None:
        self.built.pop()

    def _is_module_class(self, expr: cst.BaseExpression) -> bool:
        name = self.ctx.qualname(expr)
        if name is not None:
            return name in ("torch.nn.Module", "torch.nn.modules.module.Module") or self._checked_model(name)
        return isinstance(expr, cst.Name) and expr.value in self.module_classes

    def _checked_model(self, qualname: str) -> bool:
        """An nn.Module class imported from another checked file."""
        found = flow.foreign_class(self.ctx, qualname)
        return found is not None and found.is_module

    def _builds_model(self, call: cst.Call) -> bool:
        func = call.func
        if isinstance(func, cst.Name) and func.value in self.module_classes:
            return True
        last = final_name(func) or ""
        if not last[:1].isupper():
            return False
        name = self.ctx.qualname(func)
        if name is None:
            return False
        if name.startswith("torch.nn.") and name.count(".") == 2:
            return not last.endswith("Loss") and last not in _WEIGHTLESS
        return self._checked_model(name)

    def visit_Call(self, node: cst.Call) -> None:
        if self.seeded:
            return
        scope = self.built[-1]
        seeds = seeded_rngs(node, self.ctx.qualname)
        if TORCH in seeds:
            self.seeded = True
            if scope and not self.loops:  # re-seeding each step (identical inputs across ranks) is no setup
                built = next(iter(scope.values()))
                what = self.ctx.module.code_for_node(built.func)
                self.report(node, f"torch is first seeded after `{what}(...)` built the model, so its initial weights "
                                  "differ on every run: seed before building the model")
            return
        if scope is not None and not scope and self._builds_model(node):
            scope["model"] = node


_ZOO_BUILDERS = frozenset({"create_model"})  # timm.create_model: lower-case builders worth resolving
# Layers without parameters to initialise: building them draws nothing from the RNG.
_WEIGHTLESS = frozenset({"Module", "ModuleList", "ModuleDict", "Sequential", "ReLU", "GELU", "Tanh", "Sigmoid",
                         "Softmax", "LogSoftmax", "Dropout", "Identity", "Flatten", "MaxPool2d", "AvgPool2d",
                         "ParameterList", "ParameterDict"})
