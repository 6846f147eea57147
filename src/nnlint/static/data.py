"""NNL1: data handling. Inputs and labels shuffled apart, statistics leaking across the split, starved loaders."""

from __future__ import annotations

import libcst as cst

from nnlint.diagnostics import Severity
from nnlint.imports import dotted_name
from nnlint.rule import StaticRule
from nnlint.static.calls import get_arg, positional_args
from nnlint.static.facts.names import final_name, last_part
from nnlint.tree import children, walk, walk_no_defs

_DATALOADERS = frozenset({"torch.utils.data.DataLoader", "torch.utils.data.dataloader.DataLoader"})


def _tokens(name: str) -> list[str]:
    return [t for t in name.lower().replace(".", "_").split("_") if t]


def _target_names(target: cst.BaseExpression) -> list[str]:
    """Dotted names bound by an assignment target, unpacking tuples and lists."""
    if isinstance(target, (cst.Tuple, cst.List)):
        return [n for element in target.elements for n in _target_names(element.value)]
    name = dotted_name(target)
    return [name] if name else []


def _is_int(expr: cst.BaseExpression | None, value: str) -> bool:
    return isinstance(expr, cst.Integer) and expr.value == value


# ---------------------------------------------------------------------------------------------------
# NNL101

_LABEL_TOKENS = frozenset({"y", "ys", "label", "labels", "lbl", "lbls", "target", "targets", "tgt", "tgts", "gt"})
_INPUT_TOKENS = frozenset({"x", "xs", "data", "input", "inputs", "feature", "features", "feats", "image", "images",
                           "img", "imgs", "sample", "samples", "text", "texts", "sentences", "seq", "seqs", "src"})
# Loader names are often "source"/"target" in domain adaptation, where independent order is intended.
_LOADER_LABEL_TOKENS = frozenset({"y", "label", "labels", "lbl", "gt", "mask", "masks"})
# Consumers that pair two arrays element by element.
_PAIRING_CALLS = frozenset({"zip", "TensorDataset", "StackDataset", "fit", "train_test_split", "train_on_batch"})
_INPLACE_SHUFFLES = frozenset({"numpy.random.shuffle", "random.shuffle"})
_PERMUTATIONS = frozenset({"torch.randperm", "numpy.random.permutation"})
_SKLEARN_SHUFFLES = frozenset({"sklearn.utils.shuffle"})
# Re-seeding (or restoring the state) between two shuffles makes them draw the same permutation.
_RESEEDS = frozenset({"numpy.random.seed", "numpy.random.set_state", "random.seed", "random.setstate"})
_RESEED = None  # marker event
# The last names of the calls above, tested before resolving a call's qualified name.
_ASSIGN_GATE = frozenset({"randperm", "permutation", "DataLoader"})
_CALL_GATE = frozenset({"shuffle", "seed", "set_state", "setstate"})


def _named_like_pair(a: str, b: str, label_tokens=_LABEL_TOKENS) -> bool:
    """`X_train` / `y_train`, `images` / `labels`: one names labels, the other inputs of the same split."""
    ta, tb = _tokens(a), _tokens(b)
    la, lb = [t for t in ta if t in label_tokens], [t for t in tb if t in label_tokens]
    if bool(la) == bool(lb):
        return False
    labels, inputs = (ta, tb) if la else (tb, ta)
    if any(t in ("target", "targets", "tgt") for t in labels) and any(t in ("source", "src") for t in inputs):
        return False  # domain adaptation's source / target sets are independent on purpose
    rest = [t for t in labels if t not in label_tokens]
    return rest == [t for t in inputs if t not in _INPUT_TOKENS]


def _paired_in(scope: cst.CSTNode, a: str, b: str) -> bool:
    """Whether the scope hands `a` and `b` together to something that pairs them (zip, TensorDataset, fit)."""
    for node in walk_no_defs(scope):
        if isinstance(node, cst.Call):
            called = final_name(node.func) or ""
            if called in _PAIRING_CALLS or called.endswith("Dataset"):
                names = {dotted_name(arg.value) for arg in node.args}
                if a in names and b in names:
                    return True
    return False


class _ShuffleScope:
    def __init__(self, node: cst.CSTNode):
        self.node = node
        self.events: list = []  # (reported node, array name, source of its order) or _RESEED
        self.permutations: dict[str, cst.CSTNode] = {}  # variable -> the call that drew it
        self.reorders: list[tuple[cst.CSTNode, str, object]] = []  # an array reordered in place: (node, name, source)
        self.groups: list[tuple[str, ...]] = []  # names created together: `x, y = load()`
        self.rows: dict[str, tuple[str, str]] = {}  # name -> (array, rows) it was sliced from: `data[3:, :-1]`
        self.assigned: set[str] = set()
        self.derived: list[tuple[str, str, int]] = []  # (name, list it was read off, when): `ys = [r[1] for r in rs]`
        self.shuffled_at: dict[str, list[tuple[int, cst.CSTNode]]] = {}  # list -> in-place shuffles (when, call)
        self.clock = 0


def _row_slice(value: cst.BaseExpression) -> tuple[str, str] | None:
    """(`data`, `3:`) when the value takes rows of a named array: `from_numpy(data[3:, :-1])`."""
    for node in walk_no_defs(value):
        if type(node) is cst.Subscript and len(node.slice) >= 2 and type(node.value) is cst.Name:
            first = node.slice[0].slice
            if isinstance(first, cst.Slice):
                return node.value.value, cst.Module([]).code_for_node(first)
    return None


class IndependentShuffle(StaticRule):
    """Inputs and labels are shuffled by separate calls, so each input ends up with another sample's label.

    Two `np.random.shuffle` / `random.shuffle` calls, two different `randperm` / `permutation`
    results, or two `sklearn.utils.shuffle` calls each draw their own order: after them `X[i]` and
    `y[i]` no longer belong together, and the model trains on noise. The same goes for zipping two
    shuffled DataLoaders, and for a permutation applied to one array only (`X = X[perm]`) while an
    array that must stay aligned with it (created in the same unpacking, sliced from the same rows,
    or named as its labels) is used afterwards unpermuted; for labels sliced by batch position
    (`y[i * bs:(i + 1) * bs]`) while a shuffled DataLoader iterates the inputs; and for labels read
    off a list of records before it is shuffled in place and features after it. Draw one permutation
    and index both (`p = torch.randperm(n); X, y = X[p], y[p]`),
    call `shuffle(X, y)` once, or keep pairs together in one Dataset and one DataLoader.
    """

    code = "NNL101"
    name = "independent-shuffle"
    severity = Severity.ERROR
    VALID = (
        "import torch\nperm = torch.randperm(len(X))\nX, y = X[perm], y[perm]\n",
        "from sklearn.utils import shuffle\nX, y = shuffle(X, y, random_state=0)\n",
        "import random\npairs = list(zip(xs, ys))\nrandom.shuffle(pairs)\n",
        "import numpy as np\n\ndef load_x():\n    np.random.shuffle(X)\n\ndef load_y():\n    np.random.shuffle(y)\n",
        "import random\nrandom.shuffle(train_files)\nrandom.shuffle(val_files)\n",
        "import numpy as np\nstate = np.random.get_state()\nnp.random.shuffle(X)\nnp.random.set_state(state)\n"
        "np.random.shuffle(y)\n",
        "import numpy as np\np = np.random.permutation(len(X))\nfor i in range(0, len(X), 32):\n"
        "    xb, yb = X[p[i:i + 32]], y[p[i:i + 32]]\n",
        "from torch.utils.data import DataLoader\nsrc = DataLoader(source_ds, shuffle=True)\n"
        "tgt = DataLoader(target_ds, shuffle=True)\nfor a, b in zip(src, tgt):\n    pass\n",
        "import random\nrandom.shuffle(source_images)\nrandom.shuffle(target_images)\n",
        "from torch.utils.data import DataLoader\nxl = DataLoader(x_ds, shuffle=True)\n"
        "yl = DataLoader(y_ds, shuffle=False)\nfor a, b in zip(xl, yl):\n    pass\n",
        "import torch\nfeatures, labels = load()\nperm = torch.randperm(len(labels))\nfeatures = features[perm]\n"
        "labels = labels[perm]\nfit(features, labels)\n",
        # different rows of one array are different sets: reordering one of them is fine
        "import torch\ntrain = torch.tensor(data[:800, :])\ntest = torch.tensor(data[800:, :])\n"
        "train = train[torch.randperm(800)]\nevaluate(train, test)\n",
        # mixup mixes a batch with its own permutation; the labels are mixed with the same index
        "import torch\nidx = torch.randperm(x.size(0))\nmixed = lam * x + (1 - lam) * x[idx]\ny_a, y_b = y, y[idx]\n",
        # reordered, but its partner is never used again
        "import torch\nx, y = load()\nx = x[torch.randperm(len(x))]\nplot(x)\n",
        "from torch.utils.data import DataLoader\nloader = DataLoader(X_train, batch_size=32, shuffle=False)\n"
        "for i, xb in enumerate(loader):\n    yb = y_train[i * 32:(i + 1) * 32]\n",
        "import random\nrandom.shuffle(records)\nlabels = [r['label'] for r in records]\n"
        "features = [r['pixels'] for r in records]\n",
        # its would-be partner is made after the permutation (ignite's metric tests: a list of batch indices)
        "import torch\ny = torch.rand(105, 1)\ny = y[torch.randperm(105)]\ndata = list(range(7))\nengine.run(data)\n",
    )
    INVALID = (
        "import numpy as np\nnp.random.shuffle(X_train)\nnp.random.shuffle(y_train)  # <-\n",
        "import random\n\ndef prepare(inputs, outputs):\n    random.shuffle(inputs)\n"
        "    random.shuffle(outputs)  # <-\n    return list(zip(inputs, outputs))\n",
        "import torch\nx = images[torch.randperm(n)]\ny = labels[torch.randperm(n)]  # <-\n",
        "import numpy as np\np1 = np.random.permutation(n)\np2 = np.random.permutation(n)\n"
        "features = features[p1]\ntargets = targets[p2]  # <-\n",
        "from sklearn.utils import shuffle\nX = shuffle(X)\ny = shuffle(y)  # <-\n",
        "import numpy as np\nX = np.random.permutation(X)\ny = np.random.permutation(y)  # <-\n",
        "from torch.utils.data import DataLoader\nimage_loader = DataLoader(images, batch_size=8, shuffle=True)\n"
        "label_loader = DataLoader(labels, batch_size=8, shuffle=True)\n"
        "for x, y in zip(image_loader, label_loader):  # <-\n    pass\n",
        # reordered alone, then paired with an array it was never reordered with
        "import torch\nfrom torch.utils.data import TensorDataset\nsignal = load_signal()\nclasses = load_classes()\n"
        "signal = signal[torch.randperm(len(signal))]  # <-\nds = TensorDataset(signal, classes)\n",
        # a random permutation applied to the inputs only
        "import torch\nfeatures, labels = load()\nperm = torch.randperm(len(labels))\nfeatures = features[perm]  # <-\n"
        "fit(features, labels)\n",
        # inputs and targets sliced from the same rows, then only the inputs reordered
        "import torch\ninputs = torch.from_numpy(data[3:, :-1])\ntargets = torch.from_numpy(data[3:, 1:])\n"
        "inputs = inputs[torch.randperm(inputs.size(0))]  # <-\nloss = criterion(model(inputs), targets)\n",
        "import torch\ndef batches(images, labels):\n    images = images[torch.randperm(len(images))]  # <-\n"
        "    return images, labels\n",
        # the loader shuffles the inputs while the labels are sliced by batch position
        "from torch.utils.data import DataLoader\nloader = DataLoader(X_train, batch_size=32, shuffle=True)\n"
        "for i, xb in enumerate(loader):\n    yb = y_train[i * 32:(i + 1) * 32]  # <-\n    step(xb, yb)\n",
        # labels read off the records before they are shuffled, features after
        "import random\nlabels = [r['label'] for r in records]\nrandom.shuffle(records)  # <-\n"
        "features = [r['pixels'] for r in records]\n",
    )

    def __init__(self, ctx):
        super().__init__(ctx)
        self.scopes = [_ShuffleScope(ctx.module)]
        self.loaders: dict[str, tuple[bool, str]] = {}  # name -> (shuffled, dataset name)
        self.batch_loops: list[tuple[str, str]] = []  # enclosing `for i, b in enumerate(shuffled_loader)`: (i, dataset)

    def visit_For(self, node: cst.For) -> None:
        it = node.iter
        if (isinstance(it, cst.Call) and isinstance(it.func, cst.Name) and it.func.value == "enumerate" and it.args
                and isinstance(node.target, cst.Tuple) and isinstance(node.target.elements[0].value, cst.Name)):
            loader = self.loaders.get(dotted_name(it.args[0].value) or "")
            if loader is not None and loader[0]:
                self.batch_loops.append((node.target.elements[0].value.value, loader[1]))
                return
        self.batch_loops.append(("", ""))

    def leave_For(self, node) -> None:
        self.batch_loops.pop()

    def _check_batch_slice(self, node: cst.Subscript) -> None:
        """`y[i * bs:(i + 1) * bs]` inside `for i, xb in enumerate(shuffled loader over X)`."""
        index, dataset = self.batch_loops[-1]
        part = node.slice[0].slice
        if not index or not dataset or not isinstance(part, cst.Slice) or part.lower is None:
            return
        array = dotted_name(node.value)
        if array is None or array == dataset or not _named_like_pair(array, dataset):
            return
        if any(isinstance(n, cst.Name) and n.value == index for n in walk(part.lower)):
            self.report(node, f"`{array}` is sliced by batch position while the loader shuffles `{dataset}`, so the "
                              "rows no longer match: put both in one TensorDataset behind one loader")

    def visit_FunctionDef(self, node) -> None:
        scope = _ShuffleScope(node)
        scope.assigned.update(p.name.value for p in (*node.params.posonly_params, *node.params.params))
        self.scopes.append(scope)

    def leave_FunctionDef(self, node) -> None:
        self._check(self.scopes.pop())

    def leave_Module(self, node) -> None:
        self._check(self.scopes[0])

    def visit_Assign(self, node: cst.Assign) -> None:
        self._note_alignment(node)
        value = node.value
        if not isinstance(value, cst.Call) or len(node.targets) != 1:
            return
        if final_name(value.func) not in _ASSIGN_GATE:  # a cheap test before resolving the name
            return
        target = dotted_name(node.targets[0].target)
        if target is None:
            return
        name = self.ctx.call_name(value)
        if name in _PERMUTATIONS:
            first = get_arg(value, 0, "x")
            if first is not None and dotted_name(first) == target:  # X = np.random.permutation(X): a shuffled copy
                self.scopes[-1].events.append((value, target, value))
            else:
                self.scopes[-1].permutations[target] = value
        elif name in _DATALOADERS:
            shuffle = get_arg(value, 2, "shuffle")
            dataset = get_arg(value, 0, "dataset")
            shuffled = isinstance(shuffle, cst.Name) and shuffle.value == "True"
            self.loaders[target] = (shuffled, (dotted_name(dataset) if dataset is not None else None) or "")

    def visit_Call(self, node: cst.Call) -> None:
        func = node.func
        if isinstance(func, cst.Name) and func.value == "zip":
            self._check_zip(node)
            return
        if final_name(func) not in _CALL_GATE:
            return
        name = self.ctx.call_name(node)
        if name is None:
            return
        scope = self.scopes[-1]
        if name in _INPLACE_SHUFFLES or name in _SKLEARN_SHUFFLES:
            arrays = positional_args(node)
            if len(arrays) != 1:
                return  # shuffle(X, y): one permutation for both
            array = dotted_name(arrays[0].value)
            if array is None:
                return
            scope.clock += 1
            scope.shuffled_at.setdefault(array, []).append((scope.clock, node))
            source: object = node
            seed = get_arg(node, None, "random_state")
            if isinstance(seed, cst.Integer):  # the same random_state gives the same order
                source = ("random_state", seed.value)
            scope.events.append((node, array, source))
        elif name in _RESEEDS:
            scope.events.append(_RESEED)

    def visit_Subscript(self, node: cst.Subscript) -> None:
        if len(node.slice) == 1 and self.batch_loops and self.batch_loops[-1][0]:
            self._check_batch_slice(node)
        if len(node.slice) != 1 or not isinstance(node.slice[0].slice, cst.Index):
            return
        index = node.slice[0].slice.value
        if isinstance(index, cst.Subscript):  # X[p[i:j]]
            index = index.value
        scope = self.scopes[-1]
        if isinstance(index, cst.Name):
            source = scope.permutations.get(index.value)
        elif isinstance(index, cst.Call) and self.ctx.call_name(index) in _PERMUTATIONS:
            source = index
        else:
            return
        array = dotted_name(node.value)
        if source is not None and array is not None:
            scope.events.append((node, array, source))

    def _note_alignment(self, node: cst.Assign) -> None:
        """What keeps arrays aligned: created together, sliced from the same rows, reordered in place."""
        if len(node.targets) != 1:
            return
        scope = self.scopes[-1]
        target = node.targets[0].target
        if isinstance(target, (cst.Tuple, cst.List)):
            names = tuple(_target_names(target))
            scope.assigned.update(names)
            if len(names) > 1 and isinstance(node.value, cst.Call):
                scope.groups.append(names)
            self._note_derived(scope, names, node.value)
            return
        name = dotted_name(target)
        if name is None:
            return
        scope.assigned.add(name)
        value = node.value
        self._note_derived(scope, (name,), value)
        if isinstance(value, cst.Subscript) and dotted_name(value.value) == name and len(value.slice) >= 1 \
                and isinstance(value.slice[0].slice, cst.Index):
            index = value.slice[0].slice.value
            if isinstance(index, cst.Name) and index.value in scope.permutations:
                scope.reorders.append((node, name, scope.permutations[index.value]))
            elif isinstance(index, cst.Call) and self.ctx.call_name(index) in _PERMUTATIONS:
                scope.reorders.append((node, name, index))
            return
        rows = _row_slice(value) if isinstance(value, cst.Call) else None
        if rows is not None:
            scope.rows[name] = rows

    @staticmethod
    def _note_derived(scope: _ShuffleScope, names: tuple[str, ...], value: cst.BaseExpression) -> None:
        """Names read off a list of records: `[r[1] for r in records]`, `f(records[:, -1])`."""
        scope.clock += 1
        sources = set()
        if isinstance(value, (cst.ListComp, cst.GeneratorExp)) and isinstance(value.for_in.iter, cst.Name):
            sources.add(value.for_in.iter.value)
        elif isinstance(value, (cst.Call, cst.Subscript)):
            sources = {n.value.value for n in walk_no_defs(value)  # exact types: isinstance() is slow here
                       if type(n) is cst.Subscript and type(n.value) is cst.Name}
        scope.derived += [(name, source, scope.clock) for name in names for source in sources if source != name]

    def _partners(self, scope: _ShuffleScope, name: str) -> set[str]:
        """Arrays that must stay row-aligned with `name`."""
        found = {n for group in scope.groups if name in group for n in group if n != name}
        rows = scope.rows.get(name)
        if rows is not None:
            found |= {n for n, r in scope.rows.items() if r == rows and n != name}
        found |= {n for n in scope.assigned if n != name and _named_like_pair(n, name)}
        # handed together to something that pairs them (zip, TensorDataset, fit)
        found |= {n for n in scope.assigned - found if n != name and _paired_in(scope.node, name, n)}
        return found

    def _check_one_sided(self, scope: _ShuffleScope) -> None:
        """A permutation applied to one array and not to the arrays that must stay aligned with it."""
        if not scope.reorders:
            return
        reordered_by: dict[str, set[int]] = {}
        for _, name, source in scope.reorders:
            reordered_by.setdefault(name, set()).add(id(source))
        for event in scope.events:
            if event is not _RESEED:
                reordered_by.setdefault(event[1], set()).add(id(event[2]))
        order = list(walk(scope.node))  # closures defined later read the arrays too
        position = {id(n): i for i, n in enumerate(order)}
        for node, name, source in scope.reorders:
            here = position.get(id(node), 0)
            for partner in sorted(self._partners(scope, name)):
                if id(source) in reordered_by.get(partner, set()):
                    continue
                if len(reordered_by.get(partner, ())) > 0:
                    continue  # shuffled by another permutation: the independent-shuffle check says so
                mentions = [position[id(n)] for n in order
                            if isinstance(n, (cst.Name, cst.Attribute)) and dotted_name(n) == partner]
                # Only an array that exists when the permutation is applied can fall out of line with it.
                if any(at < here for at in mentions) and any(at > here for at in mentions):
                    self.report(node, f"`{name}` is reordered by a random permutation but `{partner}`, which must stay "
                                      f"aligned with it, is not: index both with the same permutation")
                    break

    def _check_records(self, scope: _ShuffleScope) -> None:
        """Labels read off a list of records before it is shuffled in place, and features after it."""
        for records, shuffles in scope.shuffled_at.items():
            for when, call in shuffles:
                before = [n for n, source, t in scope.derived if source == records and t < when]
                after = [n for n, source, t in scope.derived if source == records and t > when]
                pair = next(((a, b) for a in before for b in after if _named_like_pair(a, b)), None)
                if pair is not None:
                    self.report(call, f"`{pair[0]}` was read off `{records}` before this shuffle and `{pair[1]}` after "
                                      "it, so they no longer line up: shuffle before reading either")
                    return

    def _check(self, scope: _ShuffleScope) -> None:
        self._check_records(scope)
        self._check_one_sided(scope)
        seen: list[tuple[str, object]] = []
        for event in scope.events:
            if event is _RESEED:
                seen.clear()
                continue
            node, array, source = event
            for other, other_source in seen:
                if other != array and other_source is not source and other_source != source \
                        and (_named_like_pair(other, array) or _paired_in(scope.node, other, array)):
                    self.report(node, f"`{array}` is shuffled separately from `{other}`, so their rows no longer "
                                "line up: draw one permutation and index both with it")
                    break
            seen.append((array, source))

    def _check_zip(self, node: cst.Call) -> None:
        shuffled = [(n, self.loaders[n][1]) for arg in node.args
                    if (n := dotted_name(arg.value)) in self.loaders and self.loaders[n][0]]
        for i, (a, a_data) in enumerate(shuffled):
            for b, b_data in shuffled[i + 1:]:
                if _named_like_pair(a, b, _LOADER_LABEL_TOKENS) or \
                        (a_data and b_data and _named_like_pair(a_data, b_data, _LOADER_LABEL_TOKENS)):
                    self.report(node, f"`{a}` and `{b}` each shuffle on their own, so zip pairs samples with other "
                                "samples' labels: put both in one Dataset behind one shuffled DataLoader")
                    return


# ---------------------------------------------------------------------------------------------------
# NNL102

# Transformers that learn statistics from the data they are fit on. Not LabelEncoder (a class
# vocabulary is no leak) nor stateless ones (Normalizer, FunctionTransformer).
_PREPROCESSORS = frozenset(
    {f"sklearn.preprocessing.{c}" for c in (
        "StandardScaler", "MinMaxScaler", "MaxAbsScaler", "RobustScaler", "PowerTransformer",
        "QuantileTransformer", "OneHotEncoder", "OrdinalEncoder", "TargetEncoder", "KBinsDiscretizer")}
    | {f"sklearn.decomposition.{c}" for c in ("PCA", "TruncatedSVD", "IncrementalPCA", "KernelPCA")}
    | {"sklearn.impute.SimpleImputer", "sklearn.impute.KNNImputer", "sklearn.feature_extraction.text.TfidfVectorizer",
       "sklearn.feature_selection.SelectKBest", "sklearn.feature_selection.SelectPercentile"}
)
_STAT_METHODS = frozenset({"mean", "std", "var"})
_STAT_FUNCTIONS = frozenset({"numpy.mean", "numpy.std", "numpy.var", "numpy.nanmean", "numpy.nanstd",
                             "torch.mean", "torch.std", "torch.var", "torch.std_mean", "torch.var_mean"})
# Names that say an assignment holds one side of a train/test split.
_SPLIT_TOKENS = frozenset({"train", "test", "val", "valid", "validation", "eval", "dev", "holdout", "tr", "te"})
_SPLITS = frozenset({"sklearn.model_selection.train_test_split", "torch.utils.data.random_split",
                     "torch.utils.data.dataset.random_split"})
_SPLIT_OR_STAT_NAMES = frozenset(q.rsplit(".", 1)[1] for q in _SPLITS | _STAT_FUNCTIONS)


def _over_rows(axis: cst.BaseExpression | None) -> bool:
    """Whether a reduction with this axis/dim argument mixes samples (axis absent, 0, or a tuple with 0)."""
    if axis is None:
        return True
    if isinstance(axis, (cst.Tuple, cst.List)):
        return any(_is_int(e.value, "0") for e in axis.elements)
    return _is_int(axis, "0")


def _one_sided_slice(node: cst.Subscript) -> str | None:
    """"head" for `X[:n]`, "tail" for `X[n:]`, else None (`X[:, 0]`, `X[a:b]`)."""
    if len(node.slice) != 1 or not isinstance(node.slice[0].slice, cst.Slice):
        return None
    part = node.slice[0].slice
    if part.step is not None or (part.lower is None) == (part.upper is None):
        return None
    return "head" if part.lower is None else "tail"


def _names_in(expr: cst.CSTNode) -> set[str]:
    """Every variable an expression reads: `x` and `self.x` for `f(x) + self.x.sum()`, but not the bare `sum`."""
    names = set()
    stack = [expr]
    while stack:
        node = stack.pop()
        if isinstance(node, cst.Name):
            names.add(node.value)
            continue
        if isinstance(node, cst.Attribute):
            name = dotted_name(node)
            if name:
                names.add(name)
            stack.append(node.value)
            continue
        stack.extend(children(node))
    return names


class _SplitScope:
    def __init__(self, node: cst.CSTNode):
        self.node = node
        self.fits: dict[cst.Call, tuple[str, list[str]]] = {}  # fit call -> (data it saw, names it was assigned to)
        self.splits = False


class PreprocessingBeforeSplit(StaticRule):
    """A scaler, encoder or normalization statistic is fit on the whole dataset before the train/test split.

    `StandardScaler().fit_transform(X)` or `X.mean(0)` computed before `train_test_split(X, ...)`,
    `random_split` or `X[:n]` / `X[n:]` sees the test rows too: test statistics leak into training
    and the test score is optimistic. Split first, fit on the training split only, then transform
    the test split with the fitted object (or the training mean and std).
    """

    code = "NNL102"
    name = "preprocessing-before-split"
    severity = Severity.WARNING
    VALID = (
        "from sklearn.model_selection import train_test_split\nfrom sklearn.preprocessing import StandardScaler\n"
        "X_train, X_test, y_train, y_test = train_test_split(X, y)\nscaler = StandardScaler()\n"
        "X_train = scaler.fit_transform(X_train)\nX_test = scaler.transform(X_test)\n",
        "import numpy as np\nX_train, X_test = X[:800], X[800:]\nmean = X_train.mean(axis=0)\n"
        "X_train, X_test = X_train - mean, X_test - mean\n",
        # per-sample normalization mixes no rows
        "import numpy as np\nX = X / np.linalg.norm(X, axis=1, keepdims=True)\nmu = X.mean(axis=1)\n"
        "train, test = X[:800], X[800:]\n",
        "from sklearn.preprocessing import LabelEncoder\nfrom sklearn.model_selection import train_test_split\n"
        "y = LabelEncoder().fit_transform(y)\nX_tr, X_te, y_tr, y_te = train_test_split(X, y)\n",
        "from sklearn.preprocessing import StandardScaler\nscaler = StandardScaler().fit(X)\n",  # never split here
        # halves of a tensor, not a train/test split
        "def forward(self, x):\n    mu = x.mean()\n    a, b = x[:self.d], x[self.d:]\n    return a * b - mu\n",
        "from sklearn.preprocessing import StandardScaler\nfrom sklearn.model_selection import train_test_split\n"
        "scaler = StandardScaler()\nscaler.fit(X_all)\nX = load_other()\nX_tr, X_te = train_test_split(X)\n",
    )
    INVALID = (
        "from sklearn.model_selection import train_test_split\nfrom sklearn.preprocessing import StandardScaler\n"
        "scaler = StandardScaler()\nX = scaler.fit_transform(X)  # <-\n"
        "X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2)\n",
        "import torch\nfrom torch.utils.data import TensorDataset, random_split\n\ndef make(x, y):\n"
        "    mean, std = x.mean(0), x.std(0)  # <-\n    x = (x - mean) / std\n    ds = TensorDataset(x, y)\n"
        "    return random_split(ds, [0.8, 0.2])\n",
        "import numpy as np\nmu = np.mean(X, axis=0)  # <-\nXn = X - mu\nX_train, X_test = Xn[:800], Xn[800:]\n",
        "from sklearn import preprocessing, model_selection\n"
        "X_scaled = preprocessing.MinMaxScaler().fit_transform(X)  # <-\n"
        "parts = model_selection.train_test_split(X_scaled, y)\n",
    )

    def __init__(self, ctx):
        super().__init__(ctx)
        self.scopes = [_SplitScope(ctx.module)]
        self.preprocessors: set[str] = set()  # names holding an unfitted preprocessor
        self.assigned: list[cst.Assign] = []  # the assignments being visited

    def visit_FunctionDef(self, node) -> None:
        self.scopes.append(_SplitScope(node))

    def leave_FunctionDef(self, node) -> None:
        self._check(self.scopes.pop())

    def leave_Module(self, node) -> None:
        self._check(self.scopes[0])

    def visit_Assign(self, node: cst.Assign) -> None:
        self.assigned.append(node)
        value = node.value
        if isinstance(value, cst.Call) and (final_name(value.func) or "")[:1].isupper() \
                and self.ctx.call_name(value) in _PREPROCESSORS:
            self.preprocessors.update(n for t in node.targets for n in _target_names(t.target))

    def leave_Assign(self, node) -> None:
        self.assigned.pop()

    def visit_Subscript(self, node: cst.Subscript) -> None:
        if not self.scopes[-1].splits and _one_sided_slice(node):
            self.scopes[-1].splits = True

    def visit_Call(self, node: cst.Call) -> None:
        func = node.func
        if not isinstance(func, (cst.Attribute, cst.Name)):
            return
        data = None
        if isinstance(func, cst.Attribute):
            method = func.attr.value
            if method in ("fit", "fit_transform"):
                receiver = func.value
                if (isinstance(receiver, cst.Call) and self.ctx.call_name(receiver) in _PREPROCESSORS) or \
                        dotted_name(receiver) in self.preprocessors:
                    data = get_arg(node, 0, "X")
            elif method in _STAT_METHODS and self.assigned and _over_rows(get_arg(node, 0, "axis")) \
                    and _over_rows(get_arg(node, None, "dim")):
                data = func.value
        if data is None:
            if final_name(func) not in _SPLIT_OR_STAT_NAMES:
                return
            name = self.ctx.call_name(node)
            if name in _SPLITS:
                self.scopes[-1].splits = True
                return
            if name in _STAT_FUNCTIONS and self.assigned and _over_rows(get_arg(node, 1, "axis")) \
                    and _over_rows(get_arg(node, None, "dim")):
                data = get_arg(node, 0, "input" if name.startswith("torch") else "a")
        array = dotted_name(data) if data is not None else None
        if array is not None:
            assign = self.assigned[-1] if self.assigned else None
            targets = [n for t in assign.targets for n in _target_names(t.target)] if assign else []
            self.scopes[-1].fits[node] = (array, targets)

    def _check(self, scope: _SplitScope) -> None:
        if not scope.fits or not scope.splits:
            return
        # Follow the fitted data in source order: whatever is computed from it is tainted, until reassigned.
        tainted: dict[str, cst.Call] = {}
        slices: dict[str, set[str]] = {}
        reported: set[cst.Call] = set()
        for node in walk_no_defs(scope.node):
            origin = None
            split = ""
            if isinstance(node, cst.Assign):
                targets = [n for t in node.targets for n in _target_names(t.target)]
                if any(_SPLIT_TOKENS.intersection(_tokens(t)) for t in targets):
                    # X_train, X_test = X[:n], X[n:]
                    for part in walk(node.value):
                        if isinstance(part, cst.Subscript) and (side := _one_sided_slice(part)):
                            array = dotted_name(part.value)
                            if array in tainted:
                                slices.setdefault(array, set()).add(side)
                                if len(slices[array]) == 2:
                                    origin, split = tainted[array], f"`{array}` is sliced into train and test"
                names = _names_in(node.value)
                source = next((tainted[n] for n in names if n in tainted), None)
                for target in targets:
                    if source is not None:
                        tainted[target] = source
                    else:
                        tainted.pop(target, None)
            elif isinstance(node, cst.Call) and node in scope.fits:
                array, targets = scope.fits[node]
                for name in (array, *targets):
                    tainted.setdefault(name, node)
            elif isinstance(node, cst.Call) and self.ctx.call_name(node) in _SPLITS:
                names = {n for arg in node.args for n in _names_in(arg.value)}
                origin = next((tainted[n] for n in names if n in tainted), None)
                split = f"`{last_part(self.ctx.call_name(node))}` splits them"
            if origin is not None and origin not in reported:
                reported.add(origin)
                fitted = self.ctx.module.code_for_node(origin)
                self.report(origin, f"`{fitted}` is computed on all rows before {split}, so test statistics "
                            "leak into training: split first and fit on the training split only")


# ---------------------------------------------------------------------------------------------------
# NNL103

# Calls inside `__getitem__` that do real per-item work (I/O, decoding, augmentation, tokenization).
_WORK_CALLS = frozenset({"open", "imread", "imdecode", "load", "read", "read_image", "decode_image", "loadmat",
                         "read_csv", "read_file", "augment", "tokenize", "tokenizer", "encode", "resize",
                         "load_image", "load_audio", "preprocess", "convert"})


def _does_item_work(class_def: cst.ClassDef) -> bool:
    for statement in class_def.body.body:
        if isinstance(statement, cst.FunctionDef) and statement.name.value == "__getitem__":
            for node in walk(statement):
                if isinstance(node, cst.Call):
                    called = final_name(node.func) or ""
                    if called in _WORK_CALLS or "transform" in called.lower():
                        return True
    return False


_EVAL_SPLIT_TOKENS = frozenset({"test", "val", "valid", "validation", "eval", "dev", "holdout"})


def _evaluation_loader(target: str, dataset_name: str, dataset: cst.BaseExpression | None) -> bool:
    """A loader for evaluation (named so, or over a dataset built with `train=False`): speed matters less there."""
    if _EVAL_SPLIT_TOKENS & set(_tokens(target) + _tokens(dataset_name)):
        return True
    if isinstance(dataset, cst.Call):
        split = get_arg(dataset, None, "train")
        return isinstance(split, cst.Name) and split.value == "False"
    return False


class SingleProcessLoading(StaticRule):
    """A training DataLoader does per-item work in the main process, or skips pinned memory before CUDA copies.

    With no `num_workers` (or 0), every `__getitem__` (opening files, decoding images, augmenting,
    tokenizing) runs in the training process between steps, and the GPU idles while it waits.
    Without `pin_memory=True`, host-to-GPU copies cannot overlap compute. Pass `num_workers` (e.g. 4
    or `os.cpu_count()`) and `pin_memory=True`. Loaders over in-memory `TensorDataset`s are fine as they are.
    """

    code = "NNL103"
    name = "single-process-loading"
    severity = Severity.INFO
    VALID = (
        "import torch\nfrom torch.utils.data import DataLoader, TensorDataset\n"
        "loader = DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True)\nfor xb, yb in loader:\n"
        "    xb = xb.cuda()\n",
        "from torch.utils.data import DataLoader\nfrom torchvision import datasets\n"
        "train_set = datasets.ImageFolder('data/train', transform=tf)\n"
        "loader = DataLoader(train_set, batch_size=64, shuffle=True, num_workers=8, pin_memory=True)\n"
        "device = 'cuda'\nfor x, y in loader:\n    x = x.to(device)\n",
        # CPU-only script: pin_memory does not matter
        "from torch.utils.data import DataLoader\nfrom torchvision.datasets import MNIST\n"
        "train_loader = DataLoader(MNIST('.', transform=t), batch_size=64, shuffle=True, num_workers=2)\n",
        # an evaluation loader
        "from torch.utils.data import DataLoader\nfrom torchvision.datasets import MNIST\n"
        "test_loader = DataLoader(MNIST('.', train=False), batch_size=256)\n",
        # an evaluation loader that shuffles anyway
        "from torch.utils.data import DataLoader\nfrom torchvision.datasets import MNIST\n"
        "test_loader = DataLoader(MNIST('.', train=False, transform=t), batch_size=32, shuffle=True)\n",
        # workers from the command line
        "from torch.utils.data import DataLoader\nfrom torchvision import datasets\n"
        "dl = DataLoader(datasets.CIFAR10('.'), shuffle=True, num_workers=args.workers, pin_memory=args.pin)\n",
    )
    INVALID = (
        "from PIL import Image\nfrom torch.utils.data import DataLoader, Dataset\n\nclass Photos(Dataset):\n"
        "    def __getitem__(self, i):\n        return self.transform(Image.open(self.paths[i]))\n\n"
        "train_ds = Photos()\nloader = DataLoader(train_ds, batch_size=32, shuffle=True)  # <-\n",
        "import torch\nfrom torch.utils.data import DataLoader\nfrom torchvision import datasets\n"
        "train_loader = DataLoader(datasets.CIFAR10('.', transform=tf), batch_size=128,  # <-\n"
        "                          num_workers=4)\nfor x, y in train_loader:\n    x, y = x.cuda(), y.cuda()\n",
        "from torch.utils.data import DataLoader\nfrom torchvision.datasets import ImageFolder\n"
        "ds = ImageFolder('train')\nloader = DataLoader(ds, 64, True, num_workers=0)  # <-\n",
    )

    def __init__(self, ctx):
        super().__init__(ctx)
        self.working_classes: set[str] = set()  # local Dataset classes whose __getitem__ does work
        self.assigns: list[cst.Assign] = []
        self.loaders: list[tuple[cst.Call, str]] = []  # (DataLoader call, name it was assigned to)
        self.assigned_call: cst.Call | None = None
        self.assigned_name = ""
        self.cuda_call = False
        self.cuda_string = False
        self.to_call = False

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        if any((final_name(base.value) or "").endswith("Dataset") for base in node.bases) and _does_item_work(node):
            self.working_classes.add(node.name.value)

    def visit_Assign(self, node: cst.Assign) -> None:
        self.assigns.append(node)  # read only when the file has a DataLoader
        if isinstance(node.value, cst.Call) and final_name(node.value.func) == "DataLoader":
            self.assigned_call, self.assigned_name = node.value, dotted_name(node.targets[0].target) or ""

    def visit_SimpleString(self, node: cst.SimpleString) -> None:
        if not self.cuda_string and node.value.lstrip("rbuRBU")[1:5] == "cuda":
            self.cuda_string = True

    def visit_Call(self, node: cst.Call) -> None:
        func = node.func
        if isinstance(func, cst.Attribute):
            method = func.attr.value
            if method == "cuda":
                self.cuda_call = True
                return
            if method == "to":
                self.to_call = True
                return
        if final_name(func) == "DataLoader" and self.ctx.call_name(node) in _DATALOADERS:
            self.loaders.append((node, self.assigned_name if node is self.assigned_call else ""))

    def _built_by(self, call: cst.Call) -> str | None:
        name = self.ctx.call_name(call)
        if name is not None:
            return name
        return f"local.{call.func.value}" if isinstance(call.func, cst.Name) else None

    def _works_per_item(self, built: str | None) -> bool:
        if built is None:
            return False
        if built.startswith("local."):
            return built[len("local."):] in self.working_classes
        return built.startswith("torchvision.datasets.")

    def _bindings(self) -> dict[str, list[str | None]]:
        """Variable -> what each assignment to it built (a qualified name, "local.Class", or None)."""
        bindings: dict[str, list[str | None]] = {}
        for assign in self.assigns:
            for target in assign.targets:
                name = dotted_name(target.target)
                if name is not None:
                    value = assign.value
                    built = self._built_by(value) if isinstance(value, cst.Call) else None
                    bindings.setdefault(name, []).append(built)
        return bindings

    def leave_Module(self, node) -> None:
        if not self.loaders:
            return
        uses_cuda = self.cuda_call or (self.cuda_string and self.to_call)
        bindings = self._bindings()
        for call, target in self.loaders:
            if any(arg.star for arg in call.args):
                continue
            dataset = get_arg(call, 0, "dataset")
            if isinstance(dataset, cst.Call):
                built = [self._built_by(dataset)]
                dataset_name = ""
            else:
                dataset_name = (dotted_name(dataset) if dataset is not None else None) or ""
                built = bindings.get(dataset_name, [None])
            if not all(self._works_per_item(b) for b in built):
                continue
            shuffle = get_arg(call, 2, "shuffle")
            training = (isinstance(shuffle, cst.Name) and shuffle.value == "True") or "train" in target.lower() \
                or "train" in dataset_name.lower()
            if not training or _evaluation_loader(target, dataset_name, dataset):
                continue
            what = f"`{target}`" if target else "this DataLoader"
            workers = get_arg(call, 5, "num_workers")
            if workers is None or _is_int(workers, "0"):
                self.report(call, f"{what} runs its dataset's per-item loading in the training process: pass "
                            "`num_workers` (e.g. 4) and `pin_memory=True` so the GPU is not left waiting")
                continue
            pin = get_arg(call, 7, "pin_memory")
            if uses_cuda and (pin is None or (isinstance(pin, cst.Name) and pin.value == "False")):
                self.report(call, f"{what} feeds batches to CUDA from unpinned memory: pass `pin_memory=True` so "
                            "host-to-GPU copies overlap compute")
