"""The parent side of a sandboxed child process: spawn, talk, time out, kill, clean up.

Used by the trace runner for its workers (and meant for `nnlint run`'s child). A child:

- runs in its own session and process group, killed as a whole (SIGKILL) at the end and on timeout;
- dies with nnlint: it sets PR_SET_PDEATHSIG itself (see `nnlint.trace.guards`), and it is spawned
  from one long-lived thread because the death signal follows the thread that forked it;
- gets a private temporary folder as its working directory, HOME, TMPDIR and every cache location
  (TORCH_HOME, HF_HOME, XDG_CACHE_HOME, ...), removed when it ends, so nothing lands in the
  user's home or project;
- talks JSON lines over two pipes (never stdout, which the checked code may print to), with its
  output captured to a temporary file whose tail explains a death.
"""

from __future__ import annotations

import json
import os
import queue
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import typing
from collections.abc import Callable
from concurrent.futures import Future

# Every variable that points a library at a download or cache folder, pointed into the sandbox.
CACHE_VARIABLES = ("HOME", "TMPDIR", "TEMP", "TMP", "TORCH_HOME", "HF_HOME", "HF_DATASETS_CACHE",
                   "HUGGINGFACE_HUB_CACHE", "TRANSFORMERS_CACHE", "XDG_CACHE_HOME", "XDG_CONFIG_HOME",
                   "XDG_DATA_HOME", "MPLCONFIGDIR", "TORCHINDUCTOR_CACHE_DIR", "TRITON_CACHE_DIR",
                   "KERAS_HOME", "TFHUB_CACHE_DIR", "NLTK_DATA", "PIP_CACHE_DIR")


class ChildDied(Exception):
    """The child died or closed its pipe: the message says how."""


class _Spawner:
    """Spawns every child from one thread that lives as long as nnlint.

    PR_SET_PDEATHSIG fires when the *thread* that forked the child exits, not the process: children
    spawned from short-lived worker threads would be killed when those threads end.
    """

    def __init__(self):
        self.requests: queue.SimpleQueue = queue.SimpleQueue()
        self.thread: threading.Thread | None = None
        self.lock = threading.Lock()

    def spawn(self, function: Callable[[], subprocess.Popen]) -> subprocess.Popen:
        with self.lock:
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self._serve, name="nnlint-spawner", daemon=True)
                self.thread.start()
        future: Future = Future()
        self.requests.put((function, future))
        return future.result()

    def _serve(self) -> None:
        while True:
            function, future = self.requests.get()
            try:
                future.set_result(function())
            except BaseException as exc:  # noqa: BLE001 - handed to the caller
                future.set_exception(exc)


_SPAWNER = _Spawner()


def sandbox_environment(home: str, extra_path: list[str]) -> dict[str, str]:
    """The child's environment: caches and home inside `home`, absolute PYTHONPATH, parent pid."""
    env = dict(os.environ)
    for name in CACHE_VARIABLES:
        env[name] = home
    entries = extra_path + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(os.path.abspath(p) for p in entries)  # the cwd changes
    env["NNLINT_SANDBOX_DIR"] = home
    env["NNLINT_PARENT_PID"] = str(os.getpid())
    env["NNLINT_CALLER_CWD"] = os.getcwd()
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.pop("PYTHONSTARTUP", None)
    return env


class SandboxedProcess:
    """One child process speaking JSON lines; `start` again after it died or was killed."""

    def __init__(self, module: str, args: list[str], extra_path: list[str] | None = None,
                 env: dict[str, str] | None = None):
        self.module, self.args = module, args
        self.extra_path = extra_path or []
        self.extra_env = env or {}
        self.process: subprocess.Popen | None = None
        self.home: str | None = None
        self.log: typing.IO[bytes] | None = None
        self.requests: typing.TextIO | None = None
        self.responses: int | None = None
        self.buffer = b""
        self.started = False

    # --- life cycle ---------------------------------------------------------------------------

    def start(self, ready_timeout: float) -> dict:
        """Spawn the child and wait for its first message (returned)."""
        request_read, request_write = os.pipe()
        response_read, response_write = os.pipe()
        self.home = tempfile.mkdtemp(prefix="nnlint-sandbox-")
        env = {**sandbox_environment(self.home, self.extra_path), **self.extra_env}
        self.log = tempfile.TemporaryFile()
        argv = [sys.executable, "-m", self.module, str(request_read), str(response_write), *self.args]
        try:
            self.process = _SPAWNER.spawn(lambda: subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT, cwd=self.home,
                pass_fds=(request_read, response_write), env=env, start_new_session=True))
        finally:
            os.close(request_read)
            os.close(response_write)
        self.requests = os.fdopen(request_write, "w", encoding="utf-8")
        self.responses = response_read
        self.buffer = b""
        self.started = False
        message = self.receive(time.monotonic() + ready_timeout)
        self.started = True
        return message

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL the child's whole process group, reap it, remove its folder."""
        if self.process is not None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            self.process.wait()
        self.close()

    def close(self) -> None:
        if self.requests is not None:
            try:
                self.requests.close()
            except OSError:
                pass
            self.requests = None
        if self.responses is not None:
            try:
                os.close(self.responses)
            except OSError:
                pass
            self.responses = None
        if self.log is not None:
            self.log.close()
            self.log = None
        if self.home is not None:
            shutil.rmtree(self.home, ignore_errors=True)
            self.home = None
        self.process = None

    # --- messages -----------------------------------------------------------------------------

    def send(self, message: dict) -> None:
        if self.requests is None:
            raise ChildDied(self.death())
        try:
            self.requests.write(json.dumps(message) + "\n")
            self.requests.flush()
        except (BrokenPipeError, ValueError):
            raise ChildDied(self.death()) from None

    def receive(self, deadline: float) -> dict:
        """The next message; TimeoutError past `deadline`, ChildDied if the child is gone."""
        if self.responses is None:
            raise ChildDied(self.death())
        while b"\n" not in self.buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            ready, _, _ = select.select([self.responses], [], [], remaining)
            if not ready:
                continue
            chunk = os.read(self.responses, 1 << 16)
            if not chunk:
                raise ChildDied(self.death())
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return json.loads(line)

    def death(self) -> str:
        """How the child ended, in words, for a diagnostic."""
        if self.process is None:
            return "the worker is not running"
        try:
            code = self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            return "the worker closed its pipe"
        if code < 0:
            name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else str(-code)
            cause = {"SIGSEGV": "crashed with a segmentation fault (SIGSEGV)",
                     "SIGKILL": "was killed (SIGKILL; out of memory?)",
                     "SIGABRT": "aborted (SIGABRT; often a failed allocation under the memory cap)"}
            return f"the worker {cause.get(name, 'died of ' + name)}"
        if not self.started:
            return f"the worker failed to start (status {code}): {self.output_tail().strip()[-300:]}"
        return f"the worker exited with status {code} (the checked code called os._exit?)"

    def output_tail(self, limit: int = 600) -> str:
        if self.log is None:
            return ""
        self.log.seek(0, os.SEEK_END)
        size = self.log.tell()
        self.log.seek(max(0, size - limit))
        return self.log.read().decode("utf-8", "replace")
