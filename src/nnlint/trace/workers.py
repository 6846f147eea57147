"""The trace workers seen from the nnlint process: their options, one worker, a pool of them.

Light on purpose (no libcst, no torch): `nnlint check` starts a worker before it imports the rest of
nnlint, so the worker's `import torch`, the slow part of tracing, overlaps nnlint's own start-up and
static pass (`EarlyWorker`).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from nnlint.trace.sandbox import ChildDied, SandboxedProcess

if TYPE_CHECKING:
    from nnlint.cache import ResultCache

STARTUP_TIMEOUT = 180.0  # importing torch on a cold disk can be slow; not charged to any file
WORKER_MODULE = "nnlint.trace.worker"


@dataclass
class TraceOptions:
    timeout: float = 30.0            # seconds per file
    memory: int = 4 * 1024**3        # address-space cap per worker, bytes
    fake_threshold: int = 50_000_000 # parameters above which the fake-tensor path is used
    batch_size: int | None = None    # override of the synthesized batch size
    fake: bool = False               # --fake: always use the fake path
    verbose: bool = False
    jobs: int = 2
    models: dict[str, dict] = field(default_factory=dict)  # "ClassName" or "path.py::ClassName" -> config
    config_root: str = "."           # directory of the pyproject.toml the options came from
    cache: ResultCache | None = None  # trace results kept between runs, when caching


class WorkerError(Exception):
    """The worker died or overran: `reason` says how, for NNL790."""


class Worker:
    """One sandboxed worker process (see `sandbox`), restarted on demand after a crash or a timeout."""

    def __init__(self, options: TraceOptions):
        self.options = options
        src = str(Path(__file__).resolve().parents[2])
        # One intra-op thread per worker: on shared cores more threads made small models slower
        # (resnet18 7x on 2 cores); parallelism comes from the workers.
        env = {"NNLINT_TRACE_THREADS": os.environ.get("NNLINT_TRACE_THREADS", "1")}
        self.child = SandboxedProcess(WORKER_MODULE, [str(options.memory)], [src], env)
        self.isolation = ""

    def start(self) -> None:
        try:
            message = self.child.start(STARTUP_TIMEOUT)
        except ChildDied as exc:
            raise WorkerError(self._reason(str(exc))) from None
        if not message.get("ready"):
            raise WorkerError(f"the worker did not start: {message}")
        self.isolation = message.get("isolation", "")

    def start_quietly(self) -> None:
        """Start, in a background thread: a worker that fails here is started again (and its failure
        reported) when a file needs it."""
        try:
            self.start()
        except (WorkerError, TimeoutError, OSError, ValueError, TypeError, AttributeError):
            self.kill()

    def receive(self, deadline: float) -> dict:
        try:
            return self.child.receive(deadline)
        except ChildDied as exc:
            raise WorkerError(self._reason(str(exc))) from None

    def _reason(self, reason: str) -> str:
        tail = self.child.output_tail()
        if "MemoryError" in tail or "bad_alloc" in tail:
            reason += f": exceeded the memory cap ({self.options.memory / 1024**3:.1f} GiB)"
        return reason

    def send(self, request: dict) -> None:
        if not self.child.alive:
            self.child.kill()
            self.start()
        try:
            self.child.send(request)
        except ChildDied as exc:
            raise WorkerError(self._reason(str(exc))) from None

    @property
    def process(self):
        """The worker's process while it runs (the language server kills a stale trace through it)."""
        return self.child.process

    def kill(self) -> None:
        """Kill it and remove its sandbox. Also how a worker ends normally: a graceful exit would spend
        half a second in torch's interpreter teardown, for nothing."""
        self.child.kill()


class EarlyWorker:
    """A worker started before nnlint knows whether it will trace anything (the CLI starts it first).

    A pool whose options it fits takes it over; the CLI discards it at the end either way."""

    def __init__(self) -> None:
        self.worker = Worker(TraceOptions())
        self.thread = threading.Thread(target=self.worker.start_quietly, name="nnlint-early-worker", daemon=True)
        self.thread.start()

    def hand_over(self, options: TraceOptions) -> Worker | None:
        """The worker, now under `options`, when it was started the way they ask (its memory cap)."""
        if options.memory != self.worker.options.memory:
            return None
        self.worker.options = options
        return self.worker

    def discard(self) -> None:
        self.worker.kill()
        self.thread.join(timeout=5)
        self.worker.kill()  # in case it was spawned while being killed


class WorkerPool:
    """Up to `options.jobs` workers, started on first use and kept across `trace_files` calls."""

    def __init__(self, options: TraceOptions, early: EarlyWorker | None = None):
        self.workers = [Worker(options) for _ in range(max(1, options.jobs))]
        self._starting: dict[int, threading.Thread] = {}  # index of a worker -> the thread starting it
        self._closing = False
        if early is not None:
            taken = early.hand_over(options)
            if taken is None:  # started under other limits: free its core now
                early.discard()
            else:
                self.workers[0] = taken
                self._starting[0] = early.thread

    def start_early(self, count: int) -> None:
        """Start `count` workers in the background now, so their `import torch` overlaps other work
        (`nnlint check` runs the static pass meanwhile). Without a core for each worker and one for
        nnlint, the others wait until the first is ready: imports that fight for the cores delay the
        first worker, and for a few small files the first is all the run needs."""
        spare_cores = (os.cpu_count() or 1) > count
        for index, worker in enumerate(self.workers[:max(0, count)]):
            if index not in self._starting:
                after = None if spare_cores or index == 0 else self._starting.get(0)
                thread = threading.Thread(target=self._start, args=(worker, after), daemon=True)
                thread.start()
                self._starting[index] = thread

    def _start(self, worker: Worker, after: threading.Thread | None) -> None:
        if after is not None:
            after.join()
        if not self._closing:
            worker.start_quietly()
        if self._closing:
            worker.kill()

    def wait_started(self, worker: Worker, still_needed: Callable[[], bool]) -> bool:
        """Wait until `worker`, when it was started early, is ready; False as soon as it is no longer
        needed (the other workers took all the files)."""
        thread = self._starting.get(self.workers.index(worker))
        while thread is not None and thread.is_alive():
            if not still_needed():
                return False
            thread.join(0.05)
        return True

    def close(self) -> None:
        """Kill every worker: each has answered all it was asked (and one started early but never
        needed is not waited for)."""
        self._closing = True
        for worker in self.workers:
            worker.kill()
        for thread in self._starting.values():
            thread.join(timeout=5)
        self._starting = {}

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
