"""Tracing executes model class bodies, constructors (once) and forward, and what they need, transitively;
never a training script, `__main__`, top-level statements or unreferenced code, in the checked file or in
a module of the project it imports."""

from __future__ import annotations

import ast
import json
import os
from pathlib import Path

import pytest

from conftest import run_nnlint
from nnlint.trace.slicing import slice_module

HAS_TORCH = __import__("importlib").util.find_spec("torch") is not None

NET = '''\
import atexit
import os

import torch.nn as nn

from train import HIDDEN
from layers.blocks import make_block


class Tracker:
    def __class_getitem__(cls, item):
        os.system("touch CLASS_GETITEM_RAN")
        return cls


class Registered(type):
    def __init__(cls, *args):
        os.system("touch METACLASS_RAN")
        super().__init__(*args)


class Unrelated(metaclass=Registered):
    pass


class Base:
    def __init_subclass__(cls):
        os.system("touch INIT_SUBCLASS_RAN")


class Child(Base):
    pass


def logged(function):
    os.system("touch DECORATOR_RAN")
    return function


@atexit.register
def goodbye():
    os.system("touch ATEXIT_RAN")


@logged
def helper(x=os.system("touch DEFAULT_RAN")):
    return x


STEPS: os.system("touch ANNOTATION_RAN") = 100
Alias = Tracker[int]
WIDTH = 4


class Net(nn.Module):
    built = 0

    def __init__(self):
        super().__init__()
        Net.built += 1
        self.constructed = Net.built
        self.body = make_block(WIDTH, HIDDEN)
        self.head = nn.Linear(HIDDEN, STEPS // 50)

    def forward(self, x):
        return self.head(self.body(x))


if __name__ == "__main__":
    os.system("touch MAIN_RAN")
'''

TRAIN = '''\
import os

import torch

HIDDEN = 24
os.system("touch TRAIN_SCRIPT_RAN")
for epoch in range(3):
    torch.save({}, f"checkpoint_{epoch}.pt")
'''

BLOCKS = '''\
import os

import torch.nn as nn

os.system("touch BLOCKS_TOP_LEVEL_RAN")


def make_block(width, hidden):
    return nn.Sequential(nn.Linear(width, hidden), nn.ReLU())


def unused(x=os.system("touch BLOCKS_DEFAULT_RAN")):
    return x
'''


def _kept_text(source: str, roots) -> str:
    """The code the slice will run, as source."""
    return ast.unparse(slice_module(source, roots=roots).tree)


def test_slice_keeps_only_what_the_model_needs():
    kept = _kept_text(NET, {"Net"})
    for needed in ("class Net", "from train import HIDDEN", "from layers.blocks import make_block", "WIDTH = 4",
                   "STEPS"):
        assert needed in kept
    for dropped in ("Tracker", "Registered", "Unrelated", "Base", "Child", "logged", "atexit.register",
                    "def helper", "ANNOTATION_RAN", "MAIN_RAN", "import atexit"):
        assert dropped not in kept, dropped
    namespace: dict = {}
    exec(compile(slice_module("STEPS: undefined_call() = 100\n", roots={"STEPS"}).tree, "m", "exec"), namespace)
    assert namespace["STEPS"] == 100  # the annotation (a call) was not evaluated


def test_slice_records_what_it_imports_from_which_module():
    piece = slice_module(NET, roots={"Net"}, package="")
    assert piece.imports["train"] == {"HIDDEN"}
    assert piece.imports["layers.blocks"] == {"make_block"}
    relative = slice_module("from .blocks import make_block\nfrom .. import util\nX = make_block\n",
                            roots={"X"}, package="pkg.models")
    assert relative.imports["pkg.models.blocks"] == {"make_block"}


def test_imported_project_module_is_sliced_for_the_imported_names():
    kept = _kept_text(TRAIN, {"HIDDEN"})
    assert kept == "HIDDEN = 24"
    kept = _kept_text(BLOCKS, {"make_block"})
    assert "def make_block" in kept and "BLOCKS_TOP_LEVEL_RAN" not in kept and "unused" not in kept


@pytest.mark.skipif(not HAS_TORCH, reason="tracing needs torch")
def test_checking_a_model_runs_nothing_else_and_builds_it_once(tmp_path):
    project = tmp_path / "project"
    (project / "models").mkdir(parents=True)
    (project / "layers").mkdir()
    (project / "layers" / "__init__.py").write_text("import os\nos.system('touch PACKAGE_INIT_RAN')\n")
    (project / "models" / "net.py").write_text(NET)
    (project / "train.py").write_text(TRAIN)
    (project / "layers" / "blocks.py").write_text(BLOCKS)
    before = sorted(p.name for p in project.rglob("*"))
    tests = Path(__file__).resolve().parent
    env = {"NNLINT_TRACE_ANALYZER": "test_trace_loading:stub_analyze",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(tests), os.environ.get("PYTHONPATH")]))}
    done = run_nnlint("check", "--no-cache", "--verbose", "--format", "json", "--select", "NNL7", "models/net.py",
                      cwd=project, env=env)
    assert done.returncode in (0, 1), done.stderr[-3000:]
    assert json.loads(done.stdout) == [], done.stdout  # no NNL790: nothing blocked, nothing failed
    note = next(line for line in done.stderr.splitlines() if ": Net: " in line and "traced via" in line)
    assert "traced via stub" in note
    assert sorted(p.name for p in project.rglob("*")) == before  # no marker, no checkpoint
    built = next(line for line in done.stderr.splitlines() if ": Net: " in line and "constructed=" in line)
    assert "constructed=1 " in built + " ", built  # the constructor ran once


@pytest.mark.parametrize("source, roots, kept, dropped", [
    ("import torch.nn as nn\nclass A(nn.Module):\n    pass\nclass B(nn.Module):\n    pass\n", {"A"},
     ["class A"], ["class B"]),
    ("from functools import lru_cache\n@lru_cache\ndef f():\n    return 1\nclass M:\n    x = f()\n", {"M"},
     ["def f", "class M"], []),
    ("try:\n    import fast as impl\nexcept ImportError:\n    import slow as impl\nclass M:\n    y = impl\n", {"M"},
     ["import fast", "import slow"], []),
])
def test_slice_examples(source, roots, kept, dropped):
    text = _kept_text(source, roots)
    for item in kept:
        assert item in text
    for item in dropped:
        assert item not in text


@pytest.mark.skipif(not HAS_TORCH, reason="tracing needs torch")
def test_bom_and_line_endings_do_not_stop_tracing(tmp_path):
    # "invalid non-printable character U+FEFF" once: the worker read the file without the static layer's decoding.
    source = "import torch.nn as nn\n\n\nclass Net(nn.Module):\n    def __init__(self):\n        super().__init__()\n" \
             "        self.fc = nn.Linear(4, 2)\n\n    def forward(self, x):\n        return self.fc(x)\n"
    (tmp_path / "bom.py").write_bytes(b"\xef\xbb\xbf" + source.replace("\n", "\r\n").encode())
    (tmp_path / "cr.py").write_bytes(b"\xef\xbb\xbf" + source.replace("\n", "\r").encode())
    tests = Path(__file__).resolve().parent
    env = {"NNLINT_TRACE_ANALYZER": "test_trace_loading:stub_analyze",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(tests), os.environ.get("PYTHONPATH")]))}
    done = run_nnlint("check", "--verbose", "--format", "json", "--select", "NNL7", "bom.py", "cr.py",
                      cwd=tmp_path, env=env)
    assert json.loads(done.stdout) == [], done.stdout
    assert "bom.py:4: Net: traced via stub" in done.stderr and "cr.py:4: Net: traced via stub" in done.stderr
