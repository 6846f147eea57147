"""The real pre-commit tool runs our hook from this checkout (`pre-commit try-repo`)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest
from conftest import ROOT

pytestmark = pytest.mark.slow

BUGGY = """import numpy as np

def shuffle_data(X, y):
    np.random.shuffle(X)
    np.random.shuffle(y)
    return X, y
"""
CLEAN = """import numpy as np

def shuffle_data(X, y):
    order = np.random.permutation(len(X))
    return X[order], y[order]
"""


def _git(cwd, *args):
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def test_precommit_hook_fails_on_buggy_file_and_passes_on_clean(tmp_path):
    if shutil.which("pre-commit") is None:
        pytest.fail("pre-commit is a test dependency: pip install -e '.[dev]'")
    repo = tmp_path / "user-repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    (repo / "train.py").write_text(BUGGY)
    (repo / "clean.py").write_text(CLEAN)
    _git(repo, "add", ".")
    env = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "cache"), "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}

    def try_repo(*files):
        return subprocess.run(
            ["pre-commit", "try-repo", str(ROOT), "nnlint", "--files", *files],
            cwd=repo, env=env, capture_output=True, text=True, timeout=900,
        )

    failed = try_repo("train.py")
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "NNL101" in failed.stdout and "train.py:5:" in failed.stdout
    passed = try_repo("clean.py")
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "Passed" in passed.stdout

    # Notebooks are `jupyter` files to pre-commit: the hook takes them too.
    (repo / "train.ipynb").write_text(_notebook(BUGGY), encoding="utf-8")
    _git(repo, "add", ".")
    failed = try_repo("train.ipynb")
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "train.ipynb:cell 2:5:" in failed.stdout and "NNL101" in failed.stdout


def _notebook(code: str) -> str:
    cells = [{"cell_type": "markdown", "metadata": {}, "source": ["# Data"]},
             {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [],
              "source": code.splitlines(keepends=True)}]
    return json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}, indent=1) + "\n"

def test_the_two_hooks_compose_without_duplicate_findings(cli, monkeypatch):
    """Both hooks enabled: the static hook's findings and the trace hook's findings never overlap."""
    import json

    import yaml

    hooks = {h["id"]: h["entry"].split()[1:] for h in yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())}
    monkeypatch.chdir(ROOT)
    target = "fixtures/buggy/text_lstm.py"
    found = []
    for hook_id in ("nnlint", "nnlint-trace"):
        args = [a for a in hooks[hook_id] if a not in ("--format", "concise")]
        result = cli(*args, "--format", "json", target)
        found.append({(d["line"], d["code"]) for d in json.loads(result.stdout)})
    static, traced = found
    assert static and not static & traced
    assert all(code.startswith("NNL7") for _, code in traced)
