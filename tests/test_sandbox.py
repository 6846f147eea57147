"""Checking code never changes the machine: model code that writes, connects, spawns, forks or signals
is stopped at the call, reported (NNL790, with what and where), and leaves no file, connection or process.
"""

from __future__ import annotations

import json
import re
import os
import shutil
import socket
from pathlib import Path

import pytest

from conftest import run_nnlint

HAS_TORCH = __import__("importlib").util.find_spec("torch") is not None
pytestmark = pytest.mark.skipif(not HAS_TORCH, reason="tracing needs torch")
HOSTILE = Path(__file__).resolve().parent / "robustness" / "trace" / "side_effects.py"


def _processes() -> list[str]:
    """Command line and environment of every process on the machine, one string each."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            text = b""
            for part in ("cmdline", "environ"):
                try:
                    with open(f"/proc/{entry}/{part}", "rb") as handle:
                        text += handle.read().replace(b"\0", b" ") + b" "
                except OSError:
                    continue
            out.append(text.decode("utf-8", "replace"))
    return out


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("sandbox")
    project, home, tmp = root / "project", root / "home", root / "tmp"
    for folder in (project, home, tmp):
        folder.mkdir()
    (home / ".bashrc").write_text("# the user's\n")
    shutil.copy(HOSTILE, project / "model.py")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(5)
    listener.setblocking(False)
    before = {"project": _snapshot(project), "home": _snapshot(home)}
    env = {"HOME": str(home), "TMPDIR": str(tmp), "NNLINT_TEST_PORT": str(listener.getsockname()[1]),
           "TORCH_HOME": str(home / ".cache" / "torch"), "XDG_CACHE_HOME": str(home / ".cache")}
    done = run_nnlint("check", "--no-cache", "--format", "json", "--verbose", "--jobs", "2", "--trace-timeout", "120",
                      "model.py", cwd=project, env=env)
    try:
        connection = listener.accept()
    except BlockingIOError:
        connection = None
    listener.close()
    yield {"done": done, "project": project, "home": home, "tmp": tmp, "before": before,
           "connection": connection}


def _by_model(run) -> dict[str, str]:
    items = json.loads(run["done"].stdout)
    return {i["message"].split(" ", 1)[0]: i["message"] for i in items if i["code"] == "NNL790"}


def test_nnlint_survives_and_reports(hostile_run):
    done = hostile_run["done"]
    assert done.returncode in (0, 1), done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    assert "trace sandbox:" in done.stderr  # --verbose says which isolation is in force


@pytest.mark.parametrize("model, attempt", [
    ("Writer", "writing "), ("SwallowsErrors", "writing "), ("Connector", "network blocked"),
    ("Downloader", "network blocked"), ("Spawner", "starting a process"), ("Shell", "starting a process"),
    ("Forker", "starting a process"), ("Killer", "sending a signal"),
])
def test_each_side_effect_is_blocked_and_named_with_its_line(hostile_run, model, attempt):
    message = _by_model(hostile_run).get(model, "")
    assert attempt in message, _by_model(hostile_run)
    assert "model.py:" in message and len(message) <= 200
    line = int(re.search(r"model\.py:(\d+)", message).group(1))
    source = (hostile_run["project"] / "model.py").read_text().splitlines()
    assert model in "\n".join(source[:line])  # the line is inside that model's class, at the call


def test_download_message_says_how_to_avoid_it(hostile_run):
    message = _by_model(hostile_run)["Downloader"]
    assert "download" in message and "pretrained=False" in message


def test_clean_model_and_home_cache_writer_still_trace(hostile_run):
    # HOME, TORCH_HOME and XDG_CACHE_HOME point into the sandbox: writing a cache there is allowed.
    for model in ("Clean", "HomeCache"):
        assert model not in _by_model(hostile_run)
        assert f"{model}: traced via" in hostile_run["done"].stderr


def test_no_file_in_project_or_home(hostile_run):
    assert _snapshot(hostile_run["project"]) == hostile_run["before"]["project"]
    assert _snapshot(hostile_run["home"]) == hostile_run["before"]["home"]
    assert list(hostile_run["tmp"].iterdir()) == []  # the sandbox folder was removed


def test_no_connection_and_no_leftover_process(hostile_run):
    assert hostile_run["connection"] is None
    ours = f"NNLINT_CALLER_CWD={hostile_run['project']} "
    leftovers = [p for p in _processes() if "sleep 301" in p or "sleep 302" in p or ours in p]
    assert leftovers == []


def test_worker_dies_with_nnlint(tmp_path):
    """nnlint killed with SIGKILL (no cleanup runs): its trace worker must not outlive it."""
    import signal
    import subprocess
    import sys
    import time

    (tmp_path / "slow.py").write_text(
        "import time\nimport torch.nn as nn\n\n\nclass Slow(nn.Module):\n    def __init__(self):\n"
        "        super().__init__()\n        time.sleep(600)\n\n    def forward(self, x):\n        return x\n")
    nnlint = subprocess.Popen([sys.executable, "-m", "nnlint", "check", "--trace-timeout", "600", "slow.py"],
                              cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              stdin=subprocess.DEVNULL)
    ours = f"NNLINT_CALLER_CWD={tmp_path} "
    try:
        deadline = time.monotonic() + 120
        while not any(ours in p for p in _processes()):
            assert time.monotonic() < deadline, "the worker never started"
            time.sleep(0.2)
        time.sleep(1)
    finally:
        nnlint.send_signal(signal.SIGKILL)
        nnlint.wait()
    deadline = time.monotonic() + 10
    while any(ours in p for p in _processes()):
        assert time.monotonic() < deadline, "the worker outlived nnlint"
        time.sleep(0.2)


@pytest.mark.parametrize("paths, select, static_only, starts", [
    (("train.py",), None, False, True),
    (("src",), "NNL7", False, True),
    (("train.py",), "NNL1,NNL712", False, True),
    (("train.py",), "NNL1,NNL3", False, False),  # no traced code selected
    (("train.py",), None, True, False),
    (("-",), None, False, False),  # standard input is never traced
])
def test_cli_starts_a_worker_first_only_when_it_may_trace(tmp_path, monkeypatch, paths, select, static_only, starts):
    from nnlint.cli import _early_worker

    monkeypatch.chdir(tmp_path)
    early = _early_worker(paths, select, static_only)
    try:
        assert (early is not None) == starts
        if early is not None and select is None:  # once is enough: a real worker, torch imported, waiting
            early.thread.join(timeout=120)
            assert early.worker.child.alive
    finally:
        if early is not None:
            early.discard()
    assert not [p for p in _processes() if f"NNLINT_CALLER_CWD={tmp_path} " in p]


def test_a_pool_with_other_limits_lets_the_early_worker_go(tmp_path, monkeypatch):
    from nnlint.trace.workers import EarlyWorker, TraceOptions, WorkerPool

    monkeypatch.chdir(tmp_path)
    early = EarlyWorker()
    pool = WorkerPool(TraceOptions(jobs=1, memory=early.worker.options.memory // 2), early=early)
    try:
        assert pool.workers[0] is not early.worker
        assert not early.worker.child.alive and not early.thread.is_alive()
        assert not [p for p in _processes() if f"NNLINT_CALLER_CWD={tmp_path} " in p]
    finally:
        pool.close()
        early.discard()
