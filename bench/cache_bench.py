"""Results cache: a second `nnlint check --static-only` over unchanged files against the first.

    python bench/cache_bench.py [--files 1000] [--repeat 3]

Builds FILES distinct training scripts (the fixtures, each copy with its own header so no two share
content) in a temporary folder, then runs, interleaved REPEAT times, each in a fresh process: a cold
run (cache folder removed) and a warm run (cache from the cold run, nothing changed). Prints the
median wall time of each and the ratio warm / cold. Target: <= 0.2.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def build_tree(folder: Path, count: int) -> None:
    sources = sorted((ROOT / "fixtures").rglob("*.py"))
    for index in range(count):
        source = sources[index % len(sources)]
        target = folder / f"pkg{index // 100}" / f"{source.stem}_{index}.py"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(f"# copy {index}\n" + source.read_text(encoding="utf-8"), encoding="utf-8")


def timed_run(folder: Path) -> float:
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "nnlint", "check", "--static-only", "-q", "--exit-zero", "."],
                            cwd=folder, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"nnlint failed ({result.returncode}): {result.stderr[-500:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        build_tree(folder, args.files)
        cold, warm = [], []
        for _ in range(args.repeat):
            shutil.rmtree(folder / ".nnlint_cache", ignore_errors=True)
            cold.append(timed_run(folder))
            warm.append(timed_run(folder))
        cold_s, warm_s = statistics.median(cold), statistics.median(warm)
        print(f"{args.files} files, {args.repeat} interleaved pairs")
        print(f"first run (no cache):     {cold_s:6.2f} s  (runs: {', '.join(f'{t:.2f}' for t in cold)})")
        print(f"second run (cache warm):  {warm_s:6.2f} s  (runs: {', '.join(f'{t:.2f}' for t in warm)})")
        print(f"ratio second/first:       {warm_s / cold_s:6.3f}  (target <= 0.2)")


if __name__ == "__main__":
    main()
