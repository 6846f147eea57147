"""What `nnlint run`'s probes cost: the wall time of the watched steps, probed vs plain, interleaved runs.

    python bench/run_overhead.py [--steps N] [--repeats R] [--cwd DIR] SCRIPT [-- ARGS...]

Both runs stop after N optimizer steps (or N backward passes for scripts that update weights by hand)
and time the steps after the first one, so imports, data preparation and the first step's warm-up are
left out. The plain run installs nothing but that step counter. Target: median overhead <= 20 %.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"

PLAIN_CHILD = r"""
import json, runpy, sys, time
import torch
from torch.optim.optimizer import register_optimizer_step_post_hook

steps, script, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
times, optimizer_seen = [], []


class Stop(BaseException):
    pass


def tick():
    times.append(time.perf_counter())
    if len(times) >= steps:
        raise Stop


def after_step(optimizer, args, kwargs):
    optimizer_seen.append(1)
    tick()


register_optimizer_step_post_hook(after_step)
backward = torch.autograd.backward


def counted_backward(*args, **kwargs):
    result = backward(*args, **kwargs)
    if not optimizer_seen:  # weights updated by hand: count backward passes (nnlint counts from the 2nd)
        tick()
    return result


torch.autograd.backward = counted_backward
sys.argv = [script, *sys.argv[4:]]
sys.path[0] = __import__("os").path.dirname(__import__("os").path.abspath(script))
try:
    runpy.run_path(script, run_name="__main__")
except Stop:
    pass
json.dump([b - a for a, b in zip(times, times[1:])], open(out, "w"))
__import__("os")._exit(0)
"""


def plain(script: str, args: list[str], steps: int, cwd: str) -> list[float]:
    with tempfile.TemporaryDirectory() as folder:
        out = os.path.join(folder, "times.json")
        subprocess.run([sys.executable, "-c", PLAIN_CHILD, str(steps), script, out, *args], cwd=cwd, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        return json.loads(Path(out).read_text())


def probed(script: str, args: list[str], steps: int, cwd: str) -> list[float]:
    with tempfile.TemporaryDirectory() as folder:
        request, result = os.path.join(folder, "request.json"), os.path.join(folder, "result.json")
        Path(request).write_text(json.dumps({"script": script, "args": args, "steps": steps, "time": 600,
                                             "mode": "run", "memory": 0, "result": result}))
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")]))}
        subprocess.run([sys.executable, "-m", "nnlint.run.bootstrap", request], cwd=cwd, env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        data = json.loads(Path(result).read_text())
        if data.get("crash"):
            raise SystemExit(f"the probed run crashed: {data['crash']['message']}")
        return data["series"]["step_time"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--cwd", default=".")
    parser.add_argument("script")
    parser.add_argument("args", nargs=argparse.REMAINDER)
    options = parser.parse_args()
    args = options.args[1:] if options.args[:1] == ["--"] else options.args
    ratios = []
    for repeat in range(options.repeats):
        # Alternate which goes first, so drifting machine load hits both alike.
        order = (plain, probed) if repeat % 2 == 0 else (probed, plain)
        timed = {run.__name__: statistics.mean(run(options.script, args, options.steps, options.cwd)) for run in order}
        ratios.append(timed["probed"] / timed["plain"])
        print(f"run {repeat + 1}: plain {timed['plain'] * 1000:.1f} ms, probed {timed['probed'] * 1000:.1f} ms "
              f"per step: {timed['probed'] / timed['plain'] - 1:+.1%}", flush=True)
    print(f"{options.script}: median overhead {statistics.median(ratios) - 1:+.1%} "
          f"(min {min(ratios) - 1:+.1%}, max {max(ratios) - 1:+.1%}, {options.repeats} interleaved pairs)")


if __name__ == "__main__":
    main()
