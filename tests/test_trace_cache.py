"""Trace results are cached under the slice that runs: edits elsewhere keep them, edits to what runs do not."""

from __future__ import annotations

import importlib.util
import json

import pytest

from nnlint.cache import CACHE_DIR_NAME

pytestmark = pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="tracing needs torch")

MODEL = """import torch
from torch import nn

from helper import WIDTH


class Pool(nn.Module):  # nnlint: input=float32[B,T,8]
    def __init__(self):
        super().__init__()
        self.score = nn.Linear(WIDTH, 1)

    def forward(self, h):
        weights = torch.softmax(self.score(h), dim=-1)
        return (weights * h).sum(dim=1)
"""
LOOP = "\n\nif __name__ == '__main__':\n    for epoch in range(3):\n        print('epoch', epoch)\n"


def _tamper(root) -> None:
    (path,) = (root / CACHE_DIR_NAME).glob("trace-*.json")
    entries = json.loads(path.read_text())
    for entry in entries.values():
        for row in entry[1]:
            row[2] = "FROM-CACHE"
    path.write_text(json.dumps(entries))


@pytest.fixture(scope="module")
def pool():
    from nnlint.trace.workers import TraceOptions, WorkerPool

    with WorkerPool(TraceOptions(jobs=1)) as workers:  # one warm worker for every run below
        yield workers


def _trace(pool, cache: bool = True) -> str:
    from nnlint.api import CheckOptions, check_paths

    outcome = check_paths(["model.py"], CheckOptions([], select=["NNL7"], trace_pool=pool, cache=cache))
    return "\n".join(f"{d.code} {d.message}" for d in outcome.diagnostics)


def test_trace_cache_follows_what_runs(pool, project):
    project("helper.py", "WIDTH = 8\n")
    project("model.py", MODEL)
    first = _trace(pool)
    assert "NNL703" in first and "FROM-CACHE" not in first
    _tamper(project.root)
    assert "FROM-CACHE" in _trace(pool)

    project("model.py", MODEL + LOOP)  # below the models, dropped from the slice: still cached
    assert "FROM-CACHE" in _trace(pool)

    project("helper.py", "WIDTH = 8  # the local module the slice imports changed\n")
    fresh = _trace(pool)
    assert "NNL703" in fresh and "FROM-CACHE" not in fresh

    _tamper(project.root)
    project("model.py", MODEL.replace("dim=-1)", "dim=1)") + LOOP)  # the model itself changed
    fixed = _trace(pool)
    assert "FROM-CACHE" not in fixed and "NNL703" not in fixed
    _tamper(project.root)
    assert "FROM-CACHE" not in _trace(pool, cache=False)
