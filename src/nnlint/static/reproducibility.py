"""NNL2: reproducibility. Unseeded training, half-seeded RNGs, cuDNN autotuning in seeded scripts."""

from __future__ import annotations

import libcst as cst

from nnlint.diagnostics import Applicability, Severity
from nnlint.imports import dotted_name
from nnlint.rule import Invalid, NodeFix, StaticRule
from nnlint.static import flow
from nnlint.static.calls import positional_args
from nnlint.static.facts.names import final_name
from nnlint.static.rewrite import statement_siblings
from nnlint.static.rng import (
    CUDA,
    DRAW_NAMES,
    NUMPY,
    NUMPY_DRAWS,
    PYTHON,
    PYTHON_DRAWS,
    TORCH,
    TORCH_DRAWS,
    TORCH_ONLY,
    TRAINING_LIBRARIES,
    SeededGenerators,
    TrainingCalls,
    is_main_guard,
    seeded_rngs,
)

# Decorators that do not make a function an entry point someone else calls.
_PLAIN_DECORATORS = frozenset({"staticmethod", "classmethod", "property", "no_grad", "inference_mode",
                               "enable_grad", "wraps", "cache", "lru_cache", "setter", "abstractmethod",
                               "jit", "script", "compile", "overload", "override"})


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
    if not isinstance(statement, cst.SimpleStatementLine) or not any(s is statement for s in ctx.module.body) \
            or statement.trailing_whitespace.comment is not None:
        return None  # nested (indentation unknown here), or a comment that would trail the new line
    small = statement.body[0]
    content = f"{ctx.module.code_for_node(small)}\n{_SEED_CALLS[rng].format(bound, seed)}"
    return NodeFix(message, ((small, content),), Applicability.UNSAFE)


def _seed_argument(ctx, call: cst.Call) -> str | None:
    args = positional_args(call)
    return ctx.module.code_for_node(args[0].value) if len(args) == 1 and len(call.args) == 1 else None


class _CountsLoops:
    """`self.loops`: how many `for`/`while` loops enclose the node being visited."""

    loops = 0

    def visit_For(self, node) -> None:
        self.loops += 1

    def leave_For(self, node) -> None:
        self.loops -= 1

    def visit_While(self, node) -> None:
        self.loops += 1

    def leave_While(self, node) -> None:
        self.loops -= 1


class MissingSeed(_CountsLoops, StaticRule):
    """A script trains a model but never seeds torch: every run starts from different weights and batches.

    Weight initialization, dropout masks and shuffled batch order all draw from torch's global RNG, so
    two runs of the same script give different results and a regression cannot be told from noise.
    Call `torch.manual_seed(seed)` (or Lightning's `seed_everything(seed)`, transformers'
    `set_seed(seed)`) once, before the model is built. Reported once per file, at the first training call.
    Only scripts are checked (a `__main__` block, training at top level, or a top-level call such
    as `main()`): modules that only define models and training helpers leave seeding to their caller.
    Training means an optimizer stepping over a module's parameters (or a trainer's `fit`, or
    parameters updated from their gradients by hand), reached from the script's entry point: a bare
    `backward()` for a saliency map or a smoke test, one unlooped demo step, or an optimizer over input
    pixels (style transfer, feature visualization) trains nothing. A `torch.Generator().manual_seed(s)`
    passed as `generator=` counts as seeding, and files that never import torch (micrograd) are not
    torch training. The fix (unsafe: every random draw changes) inserts `torch.manual_seed(0)` after
    the imports.
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
        # a saliency map: gradients of a pretrained model's output, no optimizer
        "import torch\nfrom torchvision import models\nmodel = models.vgg16(weights='DEFAULT').eval()\n"
        "img.requires_grad_()\nmodel(img)[0, 243].backward()\nsaliency = img.grad.abs().amax(1)\n",
        # style transfer: the optimizer updates the image, not the network
        "import torch\nimage = content.clone().requires_grad_(True)\noptimizer = torch.optim.LBFGS([image])\n"
        "for step in range(300):\n    optimizer.zero_grad()\n    style_loss(image).backward()\n    optimizer.step()\n",
        "import torch\nparams = [x_adv]\nopt = torch.optim.Adam(params, lr=0.01)\nloss.backward()\nopt.step()\n",
        # a backward-only smoke test in a library's __main__
        "import torch\nif __name__ == '__main__':\n    v = ViT()\n"
        "    v(torch.randn(1, 3, 224, 224)).sum().backward()\n",
        # one optimizer step on random images, as a library's demo: nothing is trained
        "import torch\nif __name__ == '__main__':\n    opt = torch.optim.Adam(learner.parameters(), lr=3e-4)\n"
        "    loss = learner(torch.randn(8, 3, 256, 256))\n    opt.zero_grad()\n    loss.backward()\n    opt.step()\n",
        # seeded through a generator passed to the draws (makemore)
        "import torch\ng = torch.Generator().manual_seed(2147483647)\n"
        "loader = DataLoader(ds, shuffle=True, generator=g)\n"
        "opt = torch.optim.SGD(model.parameters(), lr=0.1)\nloss.backward()\nopt.step()\n",
        # no torch: micrograd's own Value.backward() and its own optimizer
        "from micrograd.nn import MLP\nmodel = MLP(3, [4, 1])\nopt = SGD(model.parameters())\nloss.backward()\n"
        "opt.step()\n",
        # hand updates of a file's own autograd values (micrograd in a notebook that also imports torch)
        "import torch\nclass Value:\n    def backward(self):\n        pass\n\nloss.backward()\n"
        "for p in params:\n    p.data += -0.05 * p.grad\n",
        # a library's Trainer.train, never called by the __main__ block, which only samples
        "import torch\n\nclass Trainer:\n    def __init__(self, model):\n"
        "        self.opt = torch.optim.Adam(model.parameters())\n\n    def train(self):\n        loss.backward()\n"
        "        self.opt.step()\n\nif __name__ == '__main__':\n    print(Diffusion(Unet()).sample(4).shape)\n",
    )
    INVALID = (
        Invalid("import torch\nmodel = torch.nn.Linear(2, 1)\nopt = torch.optim.SGD(model.parameters(), lr=0.1)\n"
                "for x in data:\n    loss = model(x).sum()\n    loss.backward()  # <-\n    opt.step()\n"
                "    loss.backward()\n",
                fixed="import torch\ntorch.manual_seed(0)\nmodel = torch.nn.Linear(2, 1)\n"
                "opt = torch.optim.SGD(model.parameters(), lr=0.1)\n"
                "for x in data:\n    loss = model(x).sum()\n    loss.backward()\n    opt.step()\n"
                "    loss.backward()\n"),
        Invalid("import numpy as np\nimport torch\n\ndef train(model, loader, optimizer):\n"
                "    for x, y in loader:\n        optimizer.step()  # <-\n\nif __name__ == '__main__':\n"
                "    train(m, dl, o)\n",
                fixed="import numpy as np\nimport torch\ntorch.manual_seed(0)\n\n"
                "def train(model, loader, optimizer):\n    for x, y in loader:\n        optimizer.step()\n\n"
                "if __name__ == '__main__':\n    train(m, dl, o)\n"),
        "import lightning as L\ntrainer = L.Trainer(max_epochs=3)\ntrainer.fit(model)  # <-\n",
        "from pytorch_lightning import Trainer\nTrainer().fit(model, dm)  # <-\n",
        # the library's Trainer.train, reached from the script's entry point
        "import torch\n\nclass Trainer:\n    def __init__(self, model):\n"
        "        self.opt = torch.optim.Adam(model.parameters())\n\n    def train(self):\n"
        "        loss.backward()  # <-\n        self.opt.step()\n\ndef main():\n    Trainer(Net()).train()\n\n"
        "if __name__ == '__main__':\n    main()\n",
        # a generator seeded but never passed: the global RNG still decides
        "import torch\ng = torch.Generator().manual_seed(0)\nopt = torch.optim.SGD(model.parameters(), lr=0.1)\n"
        "for x in data:\n    model(x).sum().backward()  # <-\n    opt.step()\n",
        # SGD by hand over torch tensors
        "import torch\nW = torch.randn(27, 27, requires_grad=True)\nfor k in range(100):\n"
        "    loss = nll(W)\n    loss.backward()  # <-\n    W.data += -50 * W.grad\n",
    )

    def __init__(self, ctx):
        super().__init__(ctx)
        self.training = TrainingCalls()
        self.functions: list[str] = []  # names of the enclosing defs
        self.depth = 0  # inside how many defs/classes
        self.script = False  # a __main__ block or a top-level `main()`
        self.seeds_torch = False
        self.seeds_other = False
        self.class_depth = 0
        self.generators = SeededGenerators()
        # (call, innermost enclosing def or None, whether it trains a module) for every training call
        self.calls: list[tuple[cst.CSTNode, str | None, object]] = []
        self.refs: dict[str | None, set[str]] = {}  # names each def (None: top level) calls or passes on
        self.decorated: set[str] = set()  # entry points a framework calls (click commands, hydra mains)
        self.own_autograd = False  # a class defines `backward`: hand updates may be of its own values (micrograd)
        self.loops = 0
        self.repeated: set[int] = set()  # ids of the training calls that can run more than once

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        if node.name.value == "backward" and self.depth:
            self.own_autograd = True
        self.depth += 1
        self.functions.append(node.name.value)
        if any(final_name(d.decorator.func if isinstance(d.decorator, cst.Call) else d.decorator)
               not in _PLAIN_DECORATORS for d in node.decorators):
            self.decorated.add(node.name.value)

    def leave_FunctionDef(self, node) -> None:
        self.depth -= 1
        self.functions.pop()

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
        if len(node.targets) != 1:
            return
        target = dotted_name(node.targets[0].target)
        if target is None:
            return
        self.generators.note_assign(target, value, self.ctx.qualname)
        # Optimizers and trainers are classes: a capitalized name is the cheap test before resolving.
        if isinstance(value, cst.Call) and (final_name(value.func) or "")[:1].isupper():
            self.training.note_assign(target, self.ctx.call_name(value), value)
        elif isinstance(value, (cst.List, cst.Tuple)):
            self.training.note_list(target, value)

    def visit_Call(self, node: cst.Call) -> None:
        where = self.functions[-1] if self.functions else None
        refs = self.refs.setdefault(where, set())
        called = final_name(node.func)
        if called is not None:
            refs.add(called)
        refs.update(a.value.value for a in node.args if isinstance(a.value, cst.Name))  # Fire(main), spawn(run)
        if self.seeds_torch:
            return
        seeds = seeded_rngs(node, self.ctx.qualname)
        if TORCH in seeds or self.generators.seeds_with(node):
            self.seeds_torch = True
            return
        if seeds and not self.class_depth:
            self.seeds_other = True  # only CUDA's, Python's or numpy's RNG: NNL202 says what is missing
        if self.training.is_training(node, self.ctx.qualname):
            self._note_repeated(node)
            self.calls.append((node, where, self.training.trains_module(node, self.ctx.qualname)))
        elif _is_data_update(node.func) and any(_mentions_grad(a.value) for a in node.args):
            self._note_repeated(node)
            self.calls.append((node, where, _BY_HAND))  # p.data.add_(p.grad, alpha=-lr)

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        # `p.data -= lr * p.grad`: SGD by hand, as in micrograd and makemore
        target = node.target
        if isinstance(target, cst.Attribute) and target.attr.value == "data" and _mentions_grad(node.value):
            self._note_repeated(node)
            self.calls.append((node, self.functions[-1] if self.functions else None, _BY_HAND))

    def _note_repeated(self, node: cst.CSTNode) -> None:
        # In a loop, or in a def (a train step a loop or an engine calls): one unlooped step is a smoke test.
        # A trainer's fit is a whole training loop.
        fit = isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute) and node.func.attr.value == "fit"
        if self.loops or self.depth or fit:
            self.repeated.add(id(node))

    def leave_Module(self, node) -> None:
        if self.seeds_torch or self.seeds_other or not self.calls:
            return
        if not any(self.ctx.imports.imports_module(library) for library in TRAINING_LIBRARIES):
            return
        top_level = any(where is None for _, where, _ in self.calls)
        if not (self.script or top_level):
            return
        reached = self._reached()
        by_hand = not self.own_autograd  # with its own autograd (micrograd), hand updates are of its own values
        calls = [(call, by_hand if trains is _BY_HAND else trains) for call, where, trains in self.calls
                 if where is None or where in reached]
        if not any(trains and id(call) in self.repeated for call, trains in calls):
            return  # backward only (saliency), one smoke-test step, or optimizing input tensors: nothing is trained
        first = next((call for call, _ in calls if isinstance(call, cst.Call)), None)
        if first is None:
            return
        self.report(first, f"`{self._describe(first)}` trains but this file never seeds torch: call "
                    "`torch.manual_seed(seed)` (or `seed_everything(seed)`) before building the model",
                    self._fix(node))

    def _reached(self) -> set[str]:
        """The defs the script runs: called (or passed on) from top-level code, transitively by name."""
        reached: set[str] = set()
        todo = list(self.refs.get(None, set()) | self.decorated)
        while todo:
            name = todo.pop()
            if name not in reached:
                reached.add(name)
                todo.extend(self.refs.get(name, ()))
        return reached

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


_BY_HAND = "by hand"  # a parameter updated from its gradient without an optimizer: SGD written out


# Draws that reorder or pick data: their results matter even at the top of a script that trains nothing.
_REORDERING = frozenset({"shuffle", "permutation", "randperm", "choice", "choices", "sample"})


def _is_data_update(func: cst.BaseExpression) -> bool:
    return isinstance(func, cst.Attribute) and func.attr.value in ("add_", "sub_") \
        and isinstance(func.value, cst.Attribute) and func.value.attr.value == "data"


def _mentions_grad(expr: cst.BaseExpression) -> bool:
    """Whether `.grad` is read somewhere in the expression (a small one: an update's right-hand side)."""
    stack: list[cst.CSTNode] = [expr]
    while stack:
        node = stack.pop()
        if isinstance(node, cst.Attribute) and node.attr.value == "grad":
            return True
        stack.extend(node.children)
    return False


class PartialSeed(_CountsLoops, StaticRule):
    """The file seeds torch but draws from Python's or numpy's global RNG without seeding it (or the reverse).

    Seeding only torch leaves `random.shuffle`, `np.random.rand` and friends different on every run,
    so data order, augmentation or splits still change and the run is not reproducible after all.
    Seed every global RNG you use (`random.seed(s)`, `np.random.seed(s)`, `torch.manual_seed(s)`, or
    one `seed_everything(s)`), or use an explicitly seeded generator such as `np.random.default_rng(s)`.
    Also reported: a file that passes a seeded `torch.Generator` to some draws (`generator=g`) but
    leaves others on the unseeded global RNG. Not reported in tests, nor for values drawn at the top
    of a demo that trains nothing. The fix (unsafe: the draws change) seeds the missing RNG with the
    same seed, on the line after the top-level seeding call.
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
        # a demo value at the top of a notebook that trains nothing
        "import numpy as np\nimport torch\ntorch.manual_seed(7)\na = np.random.rand(4, 3)\nb = torch.from_numpy(a)\n",
        # every torch draw takes the seeded generator
        "import torch\ng = torch.Generator().manual_seed(2147483647)\nW = torch.randn((27, 27), generator=g)\n"
        "ix = torch.multinomial(p, 1, generator=g)\n",
        # makemore part 3: Python's RNG shuffles the words; torch draws only from a seeded generator, layers hand-made
        "import random\nimport torch\nrandom.seed(42)\nrandom.shuffle(words)\ng = torch.Generator().manual_seed(1)\n"
        "W = torch.randn((27, 27), generator=g, requires_grad=True)\nopt = torch.optim.SGD([W], lr=0.1)\n"
        "for i in range(100):\n    ix = torch.randint(0, 27, (32,), generator=g)\n    loss = W[ix].sum()\n"
        "    loss.backward()\n    opt.step()\n",
        # ignite's manual_seed seeds Python's, numpy's and torch's RNGs, not only CUDA's
        "import random\nimport torch\nfrom ignite.utils import manual_seed\nmanual_seed(0)\n"
        "model = torch.nn.Linear(2, 1)\nopt = torch.optim.SGD(model.parameters(), lr=0.1)\n"
        "random.shuffle(xs)\nmodel(x).sum().backward()\nopt.step()\n",
    )
    INVALID = (
        Invalid("import random\nimport torch\ntorch.manual_seed(0)\nrandom.shuffle(files)  # <-\n"
                "random.shuffle(more)\n",
                fixed="import random\nimport torch\ntorch.manual_seed(0)\nrandom.seed(0)\nrandom.shuffle(files)\n"
                "random.shuffle(more)\n"),
        Invalid("import numpy as np\nimport torch\ntorch.manual_seed(args.seed)\nnoise = np.random.randn(8)  # <-\n"
                "for x in data:\n    loss(model(x + noise)).backward()\n",
                fixed="import numpy as np\nimport torch\ntorch.manual_seed(args.seed)\nnp.random.seed(args.seed)\n"
                "noise = np.random.randn(8)\nfor x in data:\n    loss(model(x + noise)).backward()\n"),
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
        # makemore part 2: the weights take the seeded generator, the minibatches do not
        "import torch\ng = torch.Generator().manual_seed(2147483647)\nC = torch.randn((27, 2), generator=g)\n"
        "for i in range(1000):\n    ix = torch.randint(0, X.shape[0], (32,))  # <-\n",
    )

    def __init__(self, ctx):
        super().__init__(ctx)
        self.generators = SeededGenerators()
        # a torch draw, after the seeded generator was first passed, that does not take it
        self.unrouted: cst.Call | None = None
        self.looped = False
        self.routed = False
        self.loops = 0
        self.function_depth = 0
        self.draws: list[tuple[str, cst.Call, bool]] = []  # (rng, call, inside code or reordering data)
        self.seeded: set[str] = set()  # seeded anywhere
        self.setup_seeded: set[str] = set()  # seeded outside classes: the file's reproducibility setup
        self.class_depth = 0
        self.torch_seeded_explicitly = False
        self.first_draw: dict[str, cst.Call] = {}
        self.trains = False
        self.training = TrainingCalls()
        self.seed_call: dict[str, cst.Call] = {}  # the first call seeding just that RNG, outside classes
        self.builds_torch_layers = False  # `nn.Linear(...)`, `nn.Dropout(...)`: initial weights, dropout masks

    def visit_ClassDef(self, node) -> None:
        self.class_depth += 1

    def leave_ClassDef(self, node) -> None:
        self.class_depth -= 1

    def visit_FunctionDef(self, node) -> None:
        self.function_depth += 1

    def leave_FunctionDef(self, node) -> None:
        self.function_depth -= 1

    def visit_Assign(self, node: cst.Assign) -> None:
        if len(node.targets) == 1:
            target = dotted_name(node.targets[0].target)
            if target is not None:
                self.generators.note_assign(target, node.value, self.ctx.qualname)

    def visit_Call(self, node: cst.Call) -> None:
        self.generators.note_call(node)
        if self.generators.passed(node) is not None:
            self.routed = True
            return
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
                    if not self.in_tests:
                        self.draws.append((rng, node, self.class_depth > 0 or self.function_depth > 0
                                           or name.rsplit(".", 1)[-1] in _REORDERING))
                    if rng == TORCH and self.routed and (self.unrouted is None or self.loops and not self.looped):
                        self.unrouted, self.looped = node, self.loops > 0  # a minibatch draw in a loop first
                    return
        if not self.trains and self.training.is_training(node, self.ctx.qualname):
            self.trains = True
        if not self.builds_torch_layers and (final_name(node.func) or "")[:1].isupper():
            self.builds_torch_layers = (self.ctx.qualname(node.func) or "").startswith("torch.nn.")

    @property
    def in_tests(self) -> bool:
        path = self.ctx.path.replace("\\", "/")
        name = path.rsplit("/", 1)[-1]
        return name.startswith("test_") or name.endswith("_test.py") or name == "conftest.py" \
            or "/tests/" in f"/{path}" or "/test/" in f"/{path}"

    def leave_Module(self, node) -> None:
        if TORCH not in self.seeded and self.unrouted is not None and not self.in_tests:
            # makemore: a seeded generator passed to some draws, while this one uses the unseeded global RNG
            drawn = self.ctx.module.code_for_node(self.unrouted.func)
            self.report(self.unrouted, f"`{drawn}(...)` draws from torch's unseeded global RNG while the file "
                        "passes a seeded generator to other draws: pass `generator=` here too, or call "
                        "`torch.manual_seed(seed)`")
            return
        # A result depends on a draw in a file that trains, in data code (defs, classes), or when it reorders
        # data; a value drawn at the top of a demo that trains nothing (`a = np.random.rand(4, 3)`) is an example.
        unseeded_torch_draw = next((call for rng, call, _ in self.draws if rng == TORCH), None)
        for rng, call, in_code in self.draws:
            if in_code or self.trains:
                self.first_draw.setdefault(rng, call)
        if TORCH in self.setup_seeded:
            if not self.torch_seeded_explicitly:
                return  # seeded through a helper that may well seed every RNG
            for rng, label, how in ((PYTHON, "Python's `random`", "random.seed(seed)"),
                                    (NUMPY, "numpy's legacy", "np.random.seed(seed)")):
                draw = self.first_draw.get(rng)
                if draw is not None and rng not in self.seeded:
                    self._report(draw, f"torch is seeded but {label} global RNG is not", how,
                                 self._fix(self.seed_call[TORCH], rng))
        elif self.trains and TORCH not in self.seeded and self.setup_seeded and not self._torch_rng_unused:
            self._report_torch_unseeded()
        elif self.setup_seeded and TORCH not in self.seeded and unseeded_torch_draw is not None and not self.trains:
            # When the file trains, NNL201 already says torch is unseeded.
            seeded = " and ".join(label for rng, label in ((PYTHON, "Python's"), (NUMPY, "numpy's"))
                                  if rng in self.setup_seeded)
            seeding = next((self.seed_call[r] for r in (NUMPY, PYTHON) if r in self.seed_call), None)
            self._report(unseeded_torch_draw, f"{seeded} RNG is seeded but torch's global RNG is not",
                         "torch.manual_seed(seed)", self._fix(seeding, TORCH) if seeding else None)

    @property
    def _torch_rng_unused(self) -> bool:
        """Every torch draw takes a seeded generator and no torch layer is built (makemore's hand-made
        networks): torch's global RNG is never drawn from, so leaving it unseeded changes nothing."""
        return self.routed and self.unrouted is None and not self.builds_torch_layers

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


class SeedAfterInit(_CountsLoops, StaticRule):
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
        # a notebook's demo model, then the one used, built again after the seed
        "import torch\nmodel = torch.nn.Linear(50, 3)\nprint(model.weight)\ntorch.manual_seed(123)\n"
        "model = torch.nn.Linear(50, 3)\n",
        # pretrained weights replace the initial ones; the seed is for sampling
        "import torch\ndef main(params):\n    gpt = torch.nn.Linear(2, 1)\n    load_weights_into_gpt(gpt, params)\n"
        "    torch.manual_seed(123)\n    return gpt\n",
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
        # (scope, seed call, model call): reported when the scope ends, unless a model is built after the seed
        self.pending: tuple[dict, cst.Call, cst.Call] | None = None

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        if any(self._is_module_class(base.value) for base in node.bases):
            self.module_classes.add(node.name.value)
        self.built.append(None)

    def leave_ClassDef(self, node) -> None:
        self.built.pop()

    def visit_FunctionDef(self, node) -> None:
        self.built.append({})

    def leave_FunctionDef(self, node) -> None:
        self._report_pending(self.built.pop())

    def leave_Module(self, node) -> None:
        self._report_pending(self.built[0])

    def _report_pending(self, scope: dict[str, cst.Call] | None) -> None:
        if self.pending is not None and self.pending[0] is scope:
            _, seed, built = self.pending
            what = self.ctx.module.code_for_node(built.func)
            self.report(seed, f"torch is first seeded after `{what}(...)` built the model, so its initial weights "
                              "differ on every run: seed before building the model")
            self.pending = None

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
        scope = self.built[-1]
        if self.pending is not None:
            if scope is self.pending[0] and self._builds_model(node):
                self.pending = None  # built again after the seed (a notebook's demo model, then the real one)
            return
        if self.seeded:
            return
        seeds = seeded_rngs(node, self.ctx.qualname)
        if TORCH in seeds:
            self.seeded = True
            if scope and not self.loops:  # re-seeding each step (identical inputs across ranks) is no setup
                self.pending = (scope, node, scope["model"])
            return
        if scope is None:
            return
        if not scope and self._builds_model(node):
            scope["model"] = node
        elif scope and (final_name(node.func) or "").lower().startswith("load_"):
            scope.clear()  # `load_state_dict`, `load_weights_into_gpt`: the initial weights are replaced


# Layers without parameters to initialise: building them draws nothing from the RNG.
_WEIGHTLESS = frozenset({"Module", "ModuleList", "ModuleDict", "Sequential", "ReLU", "GELU", "Tanh", "Sigmoid",
                         "Softmax", "LogSoftmax", "Dropout", "Identity", "Flatten", "MaxPool2d", "AvgPool2d",
                         "ParameterList", "ParameterDict"})
