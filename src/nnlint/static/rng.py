"""Facts about random number generators shared by the data and reproducibility rules.

Which calls seed which global RNG, which calls draw from an unseeded global RNG, and which calls
show that a file trains a model. Static only: nothing here imports torch.
"""

from __future__ import annotations

import libcst as cst

from nnlint.imports import dotted_name
from nnlint.static.facts.names import final_name, is_optimizer_class, is_optimizer_name

TORCH, PYTHON, NUMPY = "torch", "random", "numpy"
CUDA = "cuda"  # torch's CUDA generators only (`torch.cuda.manual_seed_all`): CPU weights and shuffling stay unseeded
ALL_RNGS = frozenset({TORCH, PYTHON, NUMPY})
TORCH_ONLY = frozenset({TORCH})
CUDA_ONLY = frozenset({CUDA})
NOTHING: frozenset[str] = frozenset()

_TORCH_SEEDS = frozenset({"torch.manual_seed", "torch.random.manual_seed"})
_PYTHON_SEEDS = frozenset({"random.seed", "random.setstate"})
_NUMPY_SEEDS = frozenset({"numpy.random.seed", "numpy.random.set_state"})
# Calls with "seed" in their name that read or derive a seed rather than set one.
_NOT_SEEDING = frozenset({"initial_seed", "seed_worker", "SeedSequence"})
# Helpers that seed every RNG without saying so in their name (transformers calls set_seed inside).
_ALSO_SEEDING = frozenset({"enable_full_determinism"})

# Functions drawing from Python's and numpy's legacy global RNGs.
PYTHON_DRAWS = frozenset(
    "random." + f
    for f in ("random", "randint", "randrange", "choice", "choices", "shuffle", "sample", "uniform", "gauss",
              "normalvariate", "lognormvariate", "betavariate", "expovariate", "gammavariate", "triangular",
              "vonmisesvariate", "paretovariate", "weibullvariate", "getrandbits", "randbytes", "binomialvariate")
)
NUMPY_DRAWS = frozenset(
    "numpy.random." + f
    for f in ("rand", "randn", "randint", "random", "random_sample", "random_integers", "ranf", "sample", "choice",
              "shuffle", "permutation", "uniform", "normal", "standard_normal", "beta", "binomial", "poisson",
              "exponential", "gamma", "laplace", "logistic", "lognormal", "multinomial", "multivariate_normal",
              "dirichlet", "geometric", "bytes")
)
TORCH_DRAWS = frozenset(
    "torch." + f
    for f in ("rand", "randn", "randint", "randperm", "rand_like", "randn_like", "randint_like", "normal",
              "bernoulli", "multinomial", "poisson")
)

DRAW_NAMES = frozenset(q.rsplit(".", 1)[1] for q in PYTHON_DRAWS | NUMPY_DRAWS | TORCH_DRAWS)


def seeded_rngs(call: cst.Call, resolve) -> frozenset[str]:
    """The global RNGs a call seeds, e.g. {"torch"} for `torch.manual_seed(0)`; `resolve` gives qualified names.

    Lightning's `seed_everything`, transformers' and accelerate's `set_seed`, and any other call whose
    name contains "seed" (`utils.random_seed(args.seed)`, a local `set_seed` helper) count as seeding
    every RNG: we cannot see an imported body, and assuming it seeds less would report seeded scripts.
    """
    last = final_name(call.func)
    if last is None:
        return NOTHING
    lowered = last.lower()
    if "seed" not in lowered and "state" not in lowered and last not in _ALSO_SEEDING:
        return NOTHING  # the cheap test every call goes through
    qualname = resolve(call.func)
    if qualname is not None:
        if qualname in _TORCH_SEEDS:
            return TORCH_ONLY
        if qualname in _PYTHON_SEEDS:
            return frozenset({PYTHON})
        if qualname in _NUMPY_SEEDS:
            return frozenset({NUMPY})
        root, _, rest = qualname.partition(".")
        if root in (PYTHON, NUMPY):  # random.Random(seed), numpy.random.default_rng(seed): not the globals
            return NOTHING
        if root == TORCH and not rest.startswith("cuda."):
            return NOTHING
    if last in _ALSO_SEEDING:
        return ALL_RNGS
    if "seed" not in lowered or last in _NOT_SEEDING or lowered.startswith("get_"):
        return NOTHING
    if lowered.startswith("manual_seed"):
        # `generator.manual_seed(0)` seeds only that generator, torch.cuda.manual_seed_all only torch's CUDA
        # RNGs (other torch names returned above); another library's (ignite.utils.manual_seed) seeds them all.
        if qualname is None:
            return NOTHING
        return CUDA_ONLY if qualname.startswith("torch.cuda.") else ALL_RNGS
    return ALL_RNGS


class SeededGenerators:
    """`g = torch.Generator().manual_seed(0)` (or `g = torch.Generator(); g.manual_seed(0)`) passed as
    `generator=g`: the draws that take it are reproducible without seeding the global RNG."""

    def __init__(self) -> None:
        self.created: set[str] = set()  # names bound to a torch.Generator
        self.seeded: set[str] = set()  # of those, the ones seeded

    def note_assign(self, target: str, value: cst.BaseExpression, resolve) -> None:
        if not isinstance(value, cst.Call):
            return
        func = value.func
        if isinstance(func, cst.Attribute) and func.attr.value == "manual_seed" and isinstance(func.value, cst.Call):
            if resolve(func.value.func) == "torch.Generator":
                self.created.add(target)
                self.seeded.add(target)
        elif resolve(func) == "torch.Generator":
            self.created.add(target)

    def note_call(self, call: cst.Call) -> None:
        func = call.func
        if isinstance(func, cst.Attribute) and func.attr.value == "manual_seed":
            name = dotted_name(func.value)
            if name in self.created:
                self.seeded.add(name)

    def passed(self, call: cst.Call) -> str | None:
        """The seeded generator a call takes as `generator=`, if any."""
        for arg in call.args:
            if arg.keyword is not None and arg.keyword.value == "generator":
                name = dotted_name(arg.value)
                return name if name in self.seeded else None
        return None

    def seeds_with(self, call: cst.Call) -> bool:
        self.note_call(call)
        return self.passed(call) is not None


def looks_like_optimizer(expr: cst.BaseExpression) -> bool:
    return is_optimizer_name(final_name(expr))


# Libraries whose import makes a file's `.backward()` and `.step()` calls torch training (micrograd's own
# `Value.backward()` is not).
TRAINING_LIBRARIES = ("torch", "lightning", "pytorch_lightning", "accelerate", "transformers", "ignite")


class TrainingCalls:
    """Recognizes the calls that train a model: `.backward()`, an optimizer's `.step()`, a Lightning `Trainer.fit`.

    Feed it the assignments of calls (`note_assign`) to learn which names hold optimizers and trainers,
    and which optimizers update input tensors (an image, a noise vector) rather than a module's parameters.
    """

    def __init__(self) -> None:
        self.optimizers: set[str] = set()
        self.input_optimizers: set[str] = set()
        self.trainers: set[str] = set()
        self.tensor_lists: set[str] = set()  # names bound to a list literal of tensors: `params = [img]`

    def note_assign(self, target: str, qualname: str | None, call: cst.Call | None = None) -> None:
        if qualname is None:
            return
        if is_optimizer_class(qualname):
            self.optimizers.add(target)
            if call is not None and self._over_tensors(call):
                self.input_optimizers.add(target)
        elif is_lightning_trainer(qualname):
            self.trainers.add(target)

    def note_list(self, target: str, value: cst.BaseExpression) -> None:
        if is_tensor_list(value):
            self.tensor_lists.add(target)

    def _over_tensors(self, call: cst.Call) -> bool:
        """An optimizer built over listed tensors (`Adam([image])`), not over `model.parameters()`."""
        params = next((a.value for a in call.args if a.keyword is None or a.keyword.value == "params"), None)
        if params is None:
            return False
        return is_tensor_list(params) or dotted_name(params) in self.tensor_lists

    def trains_module(self, call: cst.Call, resolve) -> bool:
        """An optimizer step over a module's parameters, or a trainer's fit: not a bare `.backward()`
        (saliency maps, smoke tests) and not a step of an optimizer over input tensors."""
        func = call.func
        if not isinstance(func, cst.Attribute) or func.attr.value == "backward":
            return False
        if func.attr.value == "step":
            stepped = call.args[0].value if call.args and not looks_like_optimizer(func.value) else func.value
            if dotted_name(stepped) in self.input_optimizers:
                return False
        return self.is_training(call, resolve)

    def is_training(self, call: cst.Call, resolve) -> bool:
        func = call.func
        if not isinstance(func, cst.Attribute):
            return False
        method = func.attr.value
        if method == "backward":
            return True
        receiver = func.value
        if method == "step":
            if dotted_name(receiver) in self.optimizers or looks_like_optimizer(receiver):
                return True
            # GradScaler: scaler.step(optimizer)
            return bool(call.args) and looks_like_optimizer(call.args[0].value)
        if method == "fit":
            if isinstance(receiver, cst.Call):
                return is_lightning_trainer(resolve(receiver.func))
            return dotted_name(receiver) in self.trainers
        return False


def is_tensor_list(expr: cst.BaseExpression) -> bool:
    """A list or tuple literal of tensors (`[image]`, `[x.requires_grad_()]`): no `.parameters()`, no groups."""
    if not isinstance(expr, (cst.List, cst.Tuple)) or not expr.elements:
        return False
    for element in expr.elements:
        value = element.value
        if isinstance(element, cst.StarredElement) or not isinstance(value, (cst.Name, cst.Attribute, cst.Call,
                                                                             cst.Subscript)):
            return False
        if isinstance(value, cst.Call) and "param" in (final_name(value.func) or ""):
            return False
        if "param" in (final_name(value) or "").lower():
            return False
    return True


def is_lightning_trainer(qualname: str | None) -> bool:
    return qualname is not None and qualname.split(".", 1)[0] in ("lightning", "pytorch_lightning") \
        and qualname.endswith(".Trainer")


def is_main_guard(test: cst.BaseExpression) -> bool:
    """`__name__ == "__main__"`."""
    return isinstance(test, cst.Comparison) and isinstance(test.left, cst.Name) and test.left.value == "__name__"
