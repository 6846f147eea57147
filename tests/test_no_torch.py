"""Static checks never import torch; without torch, tracing is skipped with one note."""

from __future__ import annotations

import importlib.util

from conftest import FIXTURES, run_nnlint


def test_static_run_never_imports_torch(tmp_path):
    poisoned = tmp_path / "torch"
    poisoned.mkdir()
    (poisoned / "__init__.py").write_text("raise RuntimeError('nnlint imported torch during a static run')\n")
    done = run_nnlint("check", "--static-only", "--format", "concise", str(FIXTURES), env={"PYTHONPATH": str(tmp_path)})
    assert "imported torch" not in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 1 and "NNL302" in done.stdout


def test_missing_torch_skips_tracing_with_one_note(cli, project, monkeypatch):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real_find_spec(name, *a))
    project("ok.py", "x = 1\n")
    result = cli("check", "ok.py")
    assert result.exit_code == 0
    assert result.stderr.count("tracing skipped") == 1 and "nnlint[trace]" in result.stderr
    assert "tracing skipped" not in cli("check", "--static-only", "ok.py").stderr
