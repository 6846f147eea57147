"""Checking many files in worker processes without one file able to lose the run.

A worker that dies (a segfault in a native parser, the memory killer) breaks a
`ProcessPoolExecutor` for every file still in it. The files whose results did not come back are then
checked again one by one, each in its own forked process: the one that kills its process again is
reported as crashed (by the caller's `crashed(task, reason)`), and every other file gets its results.
"""

from __future__ import annotations

import os
import pickle
import signal
from collections.abc import Callable, Sequence
from typing import TypeVar

Task = TypeVar("Task")
Result = TypeVar("Result")


def _run_chunk(function: Callable, chunk: list) -> list:
    return [function(task) for task in chunk]


def map_resilient(function: Callable[[Task], Result], tasks: Sequence[Task], jobs: int,
                  crashed: Callable[[Task, str], Result], progress: Callable[[], None] | None = None,
                  chunksize: int = 1) -> list[Result]:
    """`[function(t) for t in tasks]` over `jobs` forked processes; results keep the tasks' order."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from concurrent.futures.process import BrokenProcessPool

    results: list = [None] * len(tasks)
    done = [False] * len(tasks)
    chunks = [list(range(start, min(start + chunksize, len(tasks)))) for start in range(0, len(tasks), chunksize)]
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("fork")) as pool:
        futures = {pool.submit(_run_chunk, function, [tasks[i] for i in chunk]): chunk for chunk in chunks}
        for future in as_completed(futures):
            try:
                values = future.result()
            except BrokenProcessPool:
                continue  # a worker died: these files are retried one by one below
            for index, value in zip(futures[future], values):
                results[index], done[index] = value, True
                if progress:
                    progress()
    for index, task in enumerate(tasks):
        if not done[index]:
            results[index] = run_isolated(function, task, crashed)
            if progress:
                progress()
    return results


def run_isolated(function: Callable[[Task], Result], task: Task, crashed: Callable[[Task, str], Result]) -> Result:
    """`function(task)` in a forked child; `crashed(task, reason)` if the child dies instead of answering."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: answer through the pipe, never return into the parent's code
        status = 70
        try:
            os.close(read_fd)
            payload = pickle.dumps(function(task))
            with os.fdopen(write_fd, "wb") as pipe:
                pipe.write(payload)
            status = 0
        finally:
            os._exit(status)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as pipe:
        payload = pipe.read()
    _, status = os.waitpid(pid, 0)
    if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0 and payload:
        return pickle.loads(payload)
    return crashed(task, describe_status(status))


def describe_status(status: int) -> str:
    """How a child ended, in words: 'was killed by SIGSEGV (segmentation fault)', 'exited with status 3'."""
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = f"signal {number}"
        detail = {"SIGSEGV": " (segmentation fault)", "SIGKILL": " (out of memory?)", "SIGABRT": " (abort)"}
        return f"was killed by {name}{detail.get(name, '')}"
    return f"exited with status {os.WEXITSTATUS(status)}"
