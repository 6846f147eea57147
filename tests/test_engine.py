"""The engine's shared facts and mechanics: import resolution, parallel determinism."""

from __future__ import annotations

import libcst as cst
import pytest

from nnlint.engine import PARALLEL_THRESHOLD, FileTask, lint_files
from nnlint.imports import ImportTable
from nnlint.registry import registry
from nnlint.tree import walk

from conftest import ROOT


def table_for(source: str) -> ImportTable:
    table = ImportTable()
    for node in walk(cst.parse_module(source)):
        if isinstance(node, (cst.Import, cst.ImportFrom)):
            table.add(node)
    return table


@pytest.mark.parametrize(
    "source, expression",
    [
        ("import torch.nn.functional as F", "F.softmax"),
        ("from torch.nn import functional", "functional.softmax"),
        ("import torch as T", "T.nn.functional.softmax"),
        ("import torch.nn", "torch.nn.functional.softmax"),
        ("from torch.nn.functional import softmax", "softmax"),
        ("from torch.nn.functional import softmax as sm", "sm"),
        ("def f():\n    import torch.nn.functional as F2", "F2.softmax"),
    ],
)
def test_aliases_resolve_to_the_qualified_name(source, expression):
    assert table_for(source).resolve(cst.parse_expression(expression)) == "torch.nn.functional.softmax"


@pytest.mark.parametrize("source, expression", [
    ("import numpy as F", "F.softmax"),
    ("", "F.softmax"),
    ("from . import functional", "functional.softmax"),
    ("import torch", "x.softmax"),
])
def test_unrelated_or_unknown_names_do_not_resolve_to_torch(source, expression):
    assert table_for(source).resolve(cst.parse_expression(expression)) != "torch.nn.functional.softmax"


def test_parallel_run_equals_serial_run(tmp_path):
    tasks = []
    codes = frozenset(registry())
    for i in range(PARALLEL_THRESHOLD + 10):
        path = tmp_path / f"m{i:03}.py"
        body = "import torch.nn.functional as F\n" + "\n" * (i % 7) + ("p = F.softmax(x)\n" if i % 3 else "p = 1\n")
        path.write_text(body if i != 5 else "def broken(:\n")
        tasks.append(FileTask(str(path), path.name, codes))
    serial = [r.diagnostics for r in lint_files(tasks, jobs=1)]
    parallel = [r.diagnostics for r in lint_files(tasks, jobs=2)]
    assert serial == parallel
    assert sum(len(d) for d in serial) > PARALLEL_THRESHOLD // 2


def test_positions_match_libcst_position_provider():
    import random

    from libcst.metadata import MetadataWrapper, PositionProvider

    from nnlint.positions import locate

    rng = random.Random(7)
    for path in sorted((ROOT / "fixtures").rglob("*.py")) + sorted((ROOT / "src" / "nnlint").rglob("*.py")):
        module = cst.parse_module(path.read_text(encoding="utf-8"))
        reference = MetadataWrapper(module, unsafe_skip_copy=True).resolve(PositionProvider)
        nodes = list(walk(module))
        for wanted in (rng.sample(nodes, min(15, len(nodes))), nodes[-1:], [module]):
            spans = locate(module, wanted)
            for node in wanted:
                r = reference[node]
                assert spans[node] == (r.start.line, r.start.column, r.end.line, r.end.column), (path, node)
