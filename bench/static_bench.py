"""Static-only speed and memory against the libcst parse-only floor, measured side by side in one run.

    bash bench/fetch_corpus.sh            # once: timm, torchvision, lightning, transformers sources
    python bench/static_bench.py [FOLDER ...] [--one-file FILE] [--repeat N]
    python bench/static_bench.py --one-file FILE --baseline-src /tmp/base/src --repeat 21

Corpus: each pass runs in a fresh process (so peak RSS is its own): libcst parse-only (1 process, and
split over all cores), and `nnlint check --static-only` (serial, and its default parallel run).
One file: wall time of the CLI against `python -c "import libcst; libcst.parse_module(...)"`, best of N.
"""

from __future__ import annotations

import argparse
import compileall
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

PARSE_ONLY = r"""
import os, sys, libcst
from concurrent.futures import ProcessPoolExecutor
from nnlint.source import decode, read_bytes

def parse(path):
    try:
        libcst.parse_module(decode(read_bytes(path)))
    except Exception:
        pass
    return 0

files = sys.argv[2:]
jobs = int(sys.argv[1])
if jobs == 1:
    for f in files:
        parse(f)
else:
    import multiprocessing
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("fork")) as pool:
        list(pool.map(parse, files, chunksize=16))
"""

NNLINT_SERIAL = r"""
import sys
from nnlint.engine import FileTask, lint_files
from nnlint.registry import registry
codes = frozenset(registry())
files = sys.argv[2:]
results = lint_files([FileTask(f, f, codes) for f in files], jobs=int(sys.argv[1]))
print(sum(len(r.diagnostics) for r in results), "findings", file=sys.stderr)
"""


# Runs a command and prints the peak RSS of its process tree's largest member, so each run is measured alone.
_PEAK = "import resource, subprocess, sys; subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL); " \
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"


def _timed(cmd: list[str], env: dict | None = None) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of a command (the wrapper's own start-up, ~20 ms, included)."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", _PEAK, *cmd], check=True, capture_output=True, text=True,
                          env=env)
    return time.perf_counter() - start, int(done.stdout) / 1024


def _files(folders: list[Path]) -> list[str]:
    return sorted(str(p) for folder in folders for p in folder.rglob("*.py") if "wheels" not in p.parts)


def corpus(folders: list[Path]) -> None:
    files = _files(folders)
    size = sum(os.path.getsize(f) for f in files) / 1e6
    print(f"corpus: {len(files)} files, {size:.1f} MB, {os.cpu_count()} cores")
    py = sys.executable
    # The file list goes through argv; the CLI walks the folders itself.
    runs = {
        "libcst parse-only, 1 process": [py, "-c", PARSE_ONLY, "1", *files],
        f"libcst parse-only, {os.cpu_count()} processes": [py, "-c", PARSE_ONLY, str(os.cpu_count()), *files],
        "nnlint static, 1 process": [py, "-c", NNLINT_SERIAL, "1", *files],
        "nnlint check --static-only (CLI)": [py, "-m", "nnlint", "check", "--static-only", "--exit-zero",
                                             "--format", "concise", *map(str, folders)],
    }
    results = {}
    for name, cmd in runs.items():
        wall, peak = _timed(cmd)
        results[name] = wall
        print(f"{name:<38} {wall:7.2f} s  {len(files) / wall:7.1f} files/s  peak RSS {peak:7.1f} MiB")
    floor = results["libcst parse-only, 1 process"]
    print(f"ratio nnlint serial / parse-only serial: {results['nnlint static, 1 process'] / floor:.2f}x")
    print(f"ratio nnlint CLI / parse-only serial:    {results['nnlint check --static-only (CLI)'] / floor:.2f}x")
    parallel_floor = results[f"libcst parse-only, {os.cpu_count()} processes"]
    print(f"ratio nnlint CLI / parse-only parallel:  {results['nnlint check --static-only (CLI)'] / parallel_floor:.2f}x")


def one_file_against(path: str, repeat: int, baseline_src: Path) -> None:
    """This checkout against another source tree (e.g. `git archive main src | tar -x -C /tmp/base`),
    one file, the CLI runs interleaved so that load changes hit both alike."""
    ours_src = HERE.parent / "src"
    for src in (ours_src, baseline_src):
        compileall.compile_dir(str(src / "nnlint"), quiet=1)
    cmd = [sys.executable, "-m", "nnlint", "check", "--static-only", "--exit-zero", path]
    envs = {name: {**os.environ, "PYTHONPATH": str(src)} for name, src in
            (("this checkout", ours_src), (f"baseline {baseline_src}", baseline_src))}
    walls: dict[str, list[float]] = {name: [] for name in envs}
    cpus: dict[str, list[float]] = {name: [] for name in envs}
    for _ in range(repeat):
        for name, env in envs.items():
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            subprocess.run(cmd, env=env, check=True, capture_output=True)
            walls[name].append(time.perf_counter() - start)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpus[name].append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    print(f"one file {path} ({os.path.getsize(path)} bytes), {repeat} interleaved runs each:")
    for name in envs:
        wall, cpu = sorted(walls[name]), sorted(cpus[name])
        print(f"  {name:<40} wall best {wall[0]:.3f} s median {wall[len(wall) // 2]:.3f} s;"
              f"  CPU best {cpu[0]:.3f} s median {cpu[len(cpu) // 2]:.3f} s")
    (ours, base) = (min(cpus[name]) for name in envs)
    (ours_wall, base_wall) = (min(walls[name]) for name in envs)
    print(f"  ratio this / baseline: CPU {ours / base:.3f}, wall {ours_wall / base_wall:.3f} (best of each)")


def one_file(path: str, repeat: int) -> None:
    # An installed package has bytecode; an editable checkout under PYTHONDONTWRITEBYTECODE would not.
    compileall.compile_dir(str(HERE.parent / "src" / "nnlint"), quiet=1)
    py = sys.executable
    floor_cmd = [py, "-c", f"import libcst; libcst.parse_module(open({path!r}).read())"]
    ours_cmd = [py, "-m", "nnlint", "check", "--static-only", "--exit-zero", path]
    floors, ours_runs = [], []
    for _ in range(repeat):  # interleaved, so load changes hit both alike
        floors.append(_timed(floor_cmd)[0])
        ours_runs.append(_timed(ours_cmd)[0])
    floor, ours = min(floors), min(ours_runs)
    print(f"one file {path} ({os.path.getsize(path)} bytes), best of {repeat}:")
    print(f"  python -c 'import libcst; parse'   {floor:.3f} s")
    print(f"  nnlint check --static-only         {ours:.3f} s   ratio {ours / floor:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", nargs="*", type=Path)
    parser.add_argument("--one-file", default=str(HERE.parent / "fixtures" / "buggy" / "cnn_classifier.py"))
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--skip-corpus", action="store_true", help="only the one-file comparison")
    parser.add_argument("--baseline-src", type=Path, help="one file: compare against this src/ tree instead")
    args = parser.parse_args()
    if args.baseline_src:
        one_file_against(args.one_file, args.repeat, args.baseline_src)
        return
    folders = args.folders or [p for p in sorted((HERE / "corpus").glob("*")) if p.is_dir() and p.name != "wheels"]
    if not args.skip_corpus:
        if not folders:
            sys.exit("no corpus: run bash bench/fetch_corpus.sh first, or pass folders")
        corpus(folders)
    one_file(args.one_file, args.repeat)


if __name__ == "__main__":
    main()
