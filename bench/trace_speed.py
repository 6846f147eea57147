"""One small-model file through `nnlint check` (static pass and tracing) against `import torch` alone.

    python bench/trace_speed.py [FILE] [--repeat N]     # default FILE: fixtures/buggy/cnn_classifier.py

Runs are interleaved (torch, nnlint, torch, nnlint, ...) so both see the same disk cache and load;
each is a fresh process, timed by wall clock (CPU time too). Reports the medians and their ratio. Target: <= 1.5x,
reached by starting the trace worker (and its `import torch`) before nnlint imports anything heavy,
and by killing workers once they have answered instead of waiting for torch's interpreter teardown.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def timed(command: list[str], env: dict, cpu: list[float] | None = None) -> float:
    """Wall seconds of one run; its CPU seconds (user + system, worker processes included) go to `cpu`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    result = subprocess.run(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if cpu is not None:
        cpu.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    if result.returncode not in (0, 1):
        sys.exit(f"{' '.join(command)} failed ({result.returncode}): {result.stderr[-500:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("file", nargs="?", default=str(ROOT / "fixtures" / "buggy" / "cnn_classifier.py"))
    parser.add_argument("--repeat", type=int, default=5)
    options = parser.parse_args()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")])))
    torch_only = [sys.executable, "-c", "import torch"]
    # --no-cache: every run traces (a cached second run would measure the cache, not tracing)
    nnlint = [sys.executable, "-m", "nnlint", "check", "--no-cache", "--jobs", "1", options.file]
    timed(torch_only, env)  # warm the disk cache once for both
    torch_times, nnlint_times, torch_cpu, nnlint_cpu = [], [], [], []
    for _ in range(options.repeat):
        torch_times.append(timed(torch_only, env, torch_cpu))
        nnlint_times.append(timed(nnlint, env, nnlint_cpu))
    floor, ours = statistics.median(torch_times), statistics.median(nnlint_times)
    print(f"python -c 'import torch': median {floor:.2f} s  ({', '.join(f'{t:.2f}' for t in torch_times)})")
    print(f"nnlint check {Path(options.file).name}: median {ours:.2f} s  ({', '.join(f'{t:.2f}' for t in nnlint_times)})")
    print(f"ratio: {ours / floor:.2f}x (target <= 1.5x)")
    cpu_floor, cpu_ours = statistics.median(torch_cpu), statistics.median(nnlint_cpu)
    print(f"CPU time (user + sys, all processes): import torch {cpu_floor:.2f} s, nnlint {cpu_ours:.2f} s "
          f"(ratio {cpu_ours / cpu_floor:.2f}x; a loaded machine inflates wall time, not CPU time)")


if __name__ == "__main__":
    main()
