"""How `nnlint check --jobs N` scales: one folder of small-model files, traced with --jobs 1 and --jobs 2.

    python bench/trace_jobs.py [--repeat N] [--files N]

The folder (made in a temporary directory) holds the first N clean fixtures that define models
(fixtures/clean/trace_*.py, then the others). Runs are interleaved (jobs 1, jobs 2, jobs 1, ...) so
both see the same disk cache and load; each is a fresh process with --no-cache, timed by wall clock
and by CPU time (user + system, worker processes included: what a busy machine does not inflate).
Reports the medians and the speed-up; --verbose runs once more per setting and prints each model's
`traced via ... s` note.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLEAN = ROOT / "fixtures" / "clean"


def model_files(count: int) -> list[Path]:
    """Clean fixtures with an nn.Module, the tracing ones first."""
    files = sorted(CLEAN.glob("trace_*.py")) + sorted(p for p in CLEAN.glob("*.py") if not p.name.startswith("trace_"))
    return [p for p in files if "nn.Module" in p.read_text(encoding="utf-8")][:count]


def timed(command: list[str], env: dict) -> tuple[float, float]:
    """Wall and CPU seconds of one run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    result = subprocess.run(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode not in (0, 1):
        sys.exit(f"{' '.join(command)} failed ({result.returncode}): {result.stderr[-500:]}")
    return elapsed, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--files", type=int, default=10)
    parser.add_argument("--verbose", action="store_true")
    options = parser.parse_args()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")])))
    with tempfile.TemporaryDirectory(prefix="nnlint-jobs-") as folder:
        for path in model_files(options.files):
            shutil.copy(path, folder)
        count = len(os.listdir(folder))

        def command(jobs: int) -> list[str]:
            return [sys.executable, "-m", "nnlint", "check", folder, "--no-cache", "--jobs", str(jobs)]

        timed(command(1), env)  # warm the disk cache once for both
        times: dict[int, list[float]] = {1: [], 2: []}
        cpu: dict[int, list[float]] = {1: [], 2: []}
        for _ in range(options.repeat):
            for jobs in times:
                wall, used = timed(command(jobs), env)
                times[jobs].append(wall)
                cpu[jobs].append(used)
        if options.verbose:
            for jobs in times:
                notes = subprocess.run(command(jobs) + ["--verbose"], env=env, capture_output=True, text=True).stderr
                print(f"--jobs {jobs}, per model:")
                print("\n".join(line for line in notes.splitlines() if "traced via" in line or "not traced" in line))
    medians = {jobs: statistics.median(t) for jobs, t in times.items()}
    for jobs, median in medians.items():
        print(f"nnlint check ({count} files) --jobs {jobs}: median {median:.2f} s  "
              f"({', '.join(f'{t:.2f}' for t in times[jobs])}); CPU {statistics.median(cpu[jobs]):.2f} s")
    print(f"speed-up with 2 jobs: {medians[1] / medians[2]:.2f}x on {os.cpu_count()} cores "
          f"(load average {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
