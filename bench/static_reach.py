"""How far the static rules reach into real code: precision on public projects, recall on injected bugs.

    python bench/static_reach.py precision [--corpus DIR] [--also bench/corpus/timm ...]   # every warning/error
    python bench/static_reach.py recall [--corpus DIR] [-v] # injected bugs found at the right line

The projects (pytorch/examples, karpathy/nanoGPT, karpathy/minGPT, yunjey/pytorch-tutorial) are
extracted under the corpus folder (default /work/corpus: examples/, nanoGPT/, minGPT/,
pytorch-tutorial/), never into this repository. `precision` lists each finding with its source
line for review. `recall` copies a project folder to a temporary directory, applies one injected
bug (an exact text replacement described below), checks the whole copied folder (so facts cross
files as in the original), and counts the bug as found when a finding of an expected code is on
the injected line and was not there before the injection.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from nnlint.diagnostics import Severity
from nnlint.engine import FileTask, lint_files
from nnlint.registry import registry

PROJECTS = ("examples", "nanoGPT", "minGPT", "pytorch-tutorial")


@dataclass(frozen=True)
class Bug:
    name: str
    folder: str  # the project folder copied (relative to the corpus), checked as a whole
    file: str  # where the finding belongs, relative to the folder
    line: str  # text of that line (after injection), present once
    codes: frozenset[str]
    edits: tuple[tuple[str, str, str], ...]  # (file, exact text present once, its replacement)


def bug(name, folder, file, old, new, line, *codes, also=()) -> Bug:
    return Bug(name, folder, file, line, frozenset(codes), ((file, old, new), *also))


MNIST = "examples/mnist"
BUGS = (
    # Loss / activation pairs split across forward() and train()/test().
    bug("mnist_forward_without_log_softmax", MNIST, "main.py", "output = F.log_softmax(x, dim=1)",
        "output = x", "loss = F.nll_loss(output, target)", "NNL404"),
    bug("mnist_forward_softmax", MNIST, "main.py", "output = F.log_softmax(x, dim=1)",
        "output = F.softmax(x, dim=1)", "loss = F.nll_loss(output, target)", "NNL404"),
    bug("mnist_cross_entropy_on_log_softmax", MNIST, "main.py", "loss = F.nll_loss(output, target)",
        "loss = F.cross_entropy(output, target)", "loss = F.cross_entropy(output, target)", "NNL401"),
    bug("mnist_rnn_forward_without_log_softmax", "examples/mnist_rnn", "main.py",
        "output = F.log_softmax(output, dim=1)", "pass", "loss = F.nll_loss(output, target)", "NNL404"),
    bug("gcn_forward_softmax", "examples/gcn", "main.py", "return F.log_softmax(x, dim=1)",
        "return F.softmax(x, dim=1)", "loss = criterion(output[mask_train], target[mask_train])", "NNL404"),
    bug("wlm_nll_on_logits_across_files", "examples/word_language_model", "main.py", "criterion = nn.NLLLoss()",
        "criterion = nn.NLLLoss()  # models return logits now", "loss = criterion(output, targets)", "NNL404",
        also=(("model.py", "return F.log_softmax(decoded, dim=1), hidden", "return decoded, hidden"),
              ("model.py", "return F.log_softmax(output, dim=-1)", "return output"))),
    bug("feedforward_softmax_head", "pytorch-tutorial/tutorials/01-basics/feedforward_neural_network", "main.py",
        "        out = self.fc2(out)\n        return out", "        out = self.fc2(out)\n        return out.softmax(dim=1)",
        "loss = criterion(outputs, labels)", "NNL401"),
    # Evaluation helpers without eval() / no_grad().
    bug("mnist_test_without_eval", MNIST, "main.py", "    model.eval()\n    test_loss = 0", "    test_loss = 0",
        "output = model(data)\n            test_loss", "NNL502"),
    bug("mnist_test_without_no_grad", MNIST, "main.py",
        "    with torch.no_grad():\n        for data, target in test_loader:",
        "    if True:\n        for data, target in test_loader:", "output = model(data)\n            test_loss", "NNL503"),
    bug("wlm_evaluate_without_eval", "examples/word_language_model", "main.py",
        "    # Turn on evaluation mode which disables dropout.\n    model.eval()\n", "",
        "output, hidden = model(data, hidden)\n                hidden = repackage_hidden(hidden)\n            total_loss",
        "NNL502"),
    # Training-loop slips inside helpers.
    bug("mnist_no_zero_grad", MNIST, "main.py", "        optimizer.zero_grad()\n        output = model(data)",
        "        output = model(data)", "optimizer.step()", "NNL501"),
    bug("mnist_loss_summed_with_graph", MNIST, "main.py", "        loss.backward()\n        optimizer.step()\n",
        "        loss.backward()\n        optimizer.step()\n        running_loss += loss\n", "running_loss += loss", "NNL505",
        also=(("main.py", "    model.train()\n    for batch_idx", "    model.train()\n    running_loss = 0\n    for batch_idx"),)),
    # Half seeding and seeding too late.
    bug("mnist_cuda_seed_only", MNIST, "main.py", "torch.manual_seed(args.seed)", "torch.cuda.manual_seed_all(args.seed)",
        "torch.cuda.manual_seed_all(args.seed)", "NNL202"),
    bug("mnist_seed_after_model", MNIST, "main.py", "    torch.manual_seed(args.seed)\n\n", "\n",
        "torch.manual_seed(args.seed)", "NNL204", also=(("main.py", "    model = Net().to(device)\n",
                                                         "    model = Net().to(device)\n    torch.manual_seed(args.seed)\n"),)),
    bug("vae_seed_after_model", "examples/vae", "main.py", "torch.manual_seed(args.seed)\n", "\n",
        "torch.manual_seed(args.seed)", "NNL204", also=(("main.py", "model = VAE().to(device)\n",
                                                         "model = VAE().to(device)\ntorch.manual_seed(args.seed)\n"),)),
    bug("nanogpt_seed_only_python_random", "nanoGPT", "train.py", "torch.manual_seed(1337 + seed_offset)",
        "import random; random.seed(1337 + seed_offset)", "import random; random.seed(1337 + seed_offset)",
        "NNL202", "NNL201"),
    # Arrays that must stay aligned.
    bug("gcn_features_permuted_alone", "examples/gcn", "main.py",
        "    idx = torch.randperm(len(labels)).to(device)\n",
        "    idx = torch.randperm(len(labels)).to(device)\n    features = features[torch.randperm(len(labels))]\n",
        "features = features[torch.randperm(len(labels))]", "NNL101"),
    bug("time_sequence_inputs_permuted", "examples/time_sequence_prediction", "train.py",
        "    target = torch.from_numpy(data[3:, 1:])\n",
        "    target = torch.from_numpy(data[3:, 1:])\n    order = torch.randperm(input.size(0))\n    input = input[order]\n",
        "input = input[order]", "NNL101"),
    bug("nanogpt_batch_inputs_shuffled", "nanoGPT", "train.py",
        "    if device_type == 'cuda':\n        # pin arrays x,y",
        "    x = x[torch.randperm(x.size(0))]\n    if device_type == 'cuda':\n        # pin arrays x,y",
        "x = x[torch.randperm(x.size(0))]", "NNL101"),
    bug("logistic_labels_sliced_by_batch_position", "pytorch-tutorial/tutorials/01-basics/logistic_regression",
        "main.py", "        # Reshape images to (batch_size, input_size)\n",
        "        # Reshape images to (batch_size, input_size)\n"
        "        labels = train_dataset.targets[i * batch_size:(i + 1) * batch_size]\n",
        "labels = train_dataset.targets[i * batch_size:(i + 1) * batch_size]", "NNL101"),
    bug("gcn_records_shuffled_between_features_and_labels", "examples/gcn", "main.py", "    # Process labels\n",
        "    np.random.shuffle(content_tensor)\n    # Process labels\n", "np.random.shuffle(content_tensor)", "NNL101"),
    bug("regression_targets_shuffled_in_place", "examples/regression", "main.py", "    y = f(x)\n",
        "    y = f(x)\n    y = y[torch.randperm(batch_size)]\n", "y = y[torch.randperm(batch_size)]", "NNL101"),
)


def _corpus_files(root: Path) -> list[Path]:
    return sorted(p for project in PROJECTS for p in (root / project).rglob("*.py"))


def _lint(paths: list[Path], display_root: Path | None = None, jobs: int = 1) -> list:
    codes = frozenset(code for code, rule in registry().items() if rule.layer == "static")
    tasks = [FileTask(str(p), str(p.relative_to(display_root)) if display_root else str(p), codes) for p in paths]
    return [d for result in lint_files(tasks, jobs=jobs) for d in result.diagnostics]


def precision(root: Path, extra: list[Path], every: int = 1) -> None:
    missing = [p for p in PROJECTS if not (root / p).is_dir()]
    if missing:
        sys.exit(f"missing projects under {root}: {', '.join(missing)} (fetch and extract them first)")
    files = _corpus_files(root)
    found = [d for d in _lint(files, root, jobs=0) if d.severity >= Severity.WARNING]
    for folder in extra:  # e.g. the unzipped wheels of bench/fetch_corpus.sh, each its own project
        extra_files = sorted(folder.rglob("*.py"))[::every]  # a deterministic sample when `every` > 1
        files += extra_files
        found += [d for d in _lint(extra_files, folder.parent, jobs=0) if d.severity >= Severity.WARNING]
    print(f"{len(files)} files, {len(found)} warnings/errors")
    for code, count in sorted(Counter(d.code for d in found).items()):
        print(f"  {code} {registry()[code].name:<32} {count}")
    for d in sorted(found, key=lambda d: (d.code, d.sort_key())):
        print(f"{d.code} {d.path}:{d.line}: {d.message}\n    {d.line_text.strip()}")


def _line_of(text: str, snippet: str) -> int:
    index = text.index(snippet)
    return text.count("\n", 0, index) + 1


def _findings(folder: Path) -> set[tuple[str, str, int]]:
    return {(d.code, d.path, d.line) for d in _lint(sorted(folder.rglob("*.py")), folder)}


def recall(root: Path, verbose: bool) -> float:
    found = 0
    with tempfile.TemporaryDirectory(prefix="nnlint-reach-") as temp:
        for bug in BUGS:
            copy = Path(temp) / bug.name
            shutil.copytree(root / bug.folder, copy, ignore=shutil.ignore_patterns("*.pt", "data", "__pycache__"))
            before = _findings(copy)
            for file, old, new in bug.edits:
                text = (copy / file).read_text()
                if text.count(old) != 1:
                    sys.exit(f"{bug.name}: the text to replace occurs {text.count(old)} times in {file}")
                (copy / file).write_text(text.replace(old, new))
            after = _findings(copy)
            buggy = (copy / bug.file).read_text()
            if buggy.count(bug.line) != 1:
                sys.exit(f"{bug.name}: the reported line's text occurs {buggy.count(bug.line)} times")
            line = _line_of(buggy, bug.line)
            expected = {(code, bug.file, line) for code in bug.codes}
            hit = bool((after - before) & expected)
            found += hit
            new = sorted(after - before)
            print(f"{'found ' if hit else 'MISSED'} {bug.name:<42} {bug.file}:{line} {'/'.join(sorted(bug.codes))}"
                  + (f"   new: {new}" if verbose or not hit else ""))
    rate = found / len(BUGS)
    print(f"recall: {found}/{len(BUGS)} = {rate:.0%}")
    return rate


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=("precision", "recall"))
    parser.add_argument("--corpus", type=Path, default=Path("/work/corpus"))
    parser.add_argument("--also", type=Path, nargs="*", default=[], help="more folders for `precision` (wheels)")
    parser.add_argument("--every", type=int, default=1, help="check every Nth file of the --also folders")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args()
    if args.mode == "precision":
        precision(args.corpus, args.also, args.every)
    else:
        recall(args.corpus, args.verbose)


if __name__ == "__main__":
    main()
