"""Tracing benchmarks: per-model time on the fixtures, the GPT-2-XL-sized fake-tensor check, a corpus run.

    python bench/trace_bench.py fixtures        # seconds per model, worker start-up excluded
    python bench/trace_bench.py gpt2            # whole nnlint-like process: wall time and peak RSS
    python bench/trace_bench.py corpus [N]      # real models from bench/corpus/{torchvision,timm}

Targets: small models under 1 s each after start-up; GPT-2-XL under 15 s and 600 MiB peak RSS.
"""

from __future__ import annotations

import collections
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
SECONDS = re.compile(r": (\w+): traced via (\S+) .*; ([\d.]+) s$")


def bench_fixtures() -> None:
    from nnlint.trace.runner import TraceOptions, WorkerPool, trace_files

    options = TraceOptions(jobs=1, verbose=True, models={"Encoder": {"args": [20, 16, 4, "tanh"]}})
    files = [p for p in sorted((ROOT / "fixtures").rglob("*.py")) if "limits" not in p.parts]
    with WorkerPool(options) as pool:
        started = time.monotonic()
        pool.workers[0].start()  # interpreter + import torch + analyzer warm-up: paid once
        print(f"worker start-up (python + import torch + warm-up): {time.monotonic() - started:.2f} s")
        per_model, walls = [], []
        for path in files:
            started = time.monotonic()
            _, notes = trace_files([(str(path), str(path.relative_to(ROOT)))], options, pool=pool)
            wall = time.monotonic() - started
            models = [m for m in map(SECONDS.search, notes) if m]
            if not models:
                continue
            walls.append((wall, len(models)))
            for match in models:
                per_model.append(float(match.group(3)))
                print(f"  {path.relative_to(ROOT)}::{match.group(1):24} {match.group(2):11} {float(match.group(3)):.3f} s")
            print(f"    file wall time through trace_files: {wall:.3f} s for {len(models)} model(s)")
    if per_model:
        print(f"{len(per_model)} models: median {statistics.median(per_model):.3f} s, "
              f"max {max(per_model):.3f} s per model (in the worker); "
              f"files: max {max(w for w, _ in walls):.3f} s wall")


GPT2_CHILD = """
import json, resource, sys, time
started = time.monotonic()
from nnlint.trace.runner import TraceOptions, trace_files
diagnostics, notes = trace_files([(sys.argv[1], "bench/gpt2_xl.py")], TraceOptions(jobs=1, verbose=True, timeout=120))
print(json.dumps({
    "wall": time.monotonic() - started,
    "self_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    "worker_rss_kib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
    "diagnostics": [f"{d.code} {d.path}:{d.line} {d.message}" for d in diagnostics],
    "notes": notes,
}))
"""


def bench_gpt2() -> None:
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", GPT2_CHILD, str(BENCH / "gpt2_xl.py")],
                          capture_output=True, text=True, cwd=ROOT)
    wall = time.monotonic() - started
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    if done.returncode != 0:
        print(done.stderr[-3000:])
        raise SystemExit("the GPT-2-XL check failed")
    report = json.loads(done.stdout.strip().splitlines()[-1])
    for note in report["notes"]:
        print("  note:", note)
    for line in report["diagnostics"]:
        print("  diagnostic:", line[:300])
    self_mib, worker_mib = report["self_rss_kib"] / 1024, report["worker_rss_kib"] / 1024
    print(f"GPT-2-XL-sized model, whole process: {wall:.2f} s wall (trace_files {report['wall']:.2f} s); "
          f"peak RSS: checker {self_mib:.0f} MiB, worker {worker_mib:.0f} MiB, "
          f"largest process {peak:.0f} MiB, sum {self_mib + worker_mib:.0f} MiB")


# Files that define well-known model classes; every nn.Module subclass in them is checked.
CORPUS_FILES = {
    "torchvision": ["alexnet", "vgg", "resnet", "densenet", "squeezenet", "mobilenetv2", "mobilenetv3",
                    "shufflenetv2", "googlenet", "mnasnet", "efficientnet", "regnet", "convnext",
                    "vision_transformer", "swin_transformer", "maxvit", "inception"],
    "timm": ["resnet", "vision_transformer", "convnext", "efficientnet", "mlp_mixer", "deit", "vgg",
             "densenet", "mobilenetv3", "regnet", "levit", "poolformer", "coat", "ghostnet", "xception"],
}


# The unzipped torchvision wheel's C extension does not match the installed torch and Pillow is not
# installed: the bench checks a copy whose package __init__ skips the extension, next to a stub PIL.
# (Without it every model fails to import, which nnlint reports as NNL790 naming the cause.)
_TV_INIT = "__version__ = 'corpus'\n\ndef _is_tracing():\n    return False\n"
_PIL_MODULES = {"__init__": "__version__ = '10.0.0'\n", "ImageDraw": "class ImageDraw:\n    pass\n",
                "Image": "class Image:\n    pass\nNEAREST, BILINEAR, BICUBIC, BOX, HAMMING, LANCZOS = range(6)\n"}


def _shim(root: Path) -> Path:
    shutil.copytree(BENCH / "corpus" / "torchvision" / "torchvision", root / "torchvision",
                    ignore=shutil.ignore_patterns("*.so", "*.so.*"))
    (root / "torchvision" / "__init__.py").write_text(_TV_INIT)
    (root / "PIL").mkdir()
    for name in ("__init__", "Image", "ImageDraw", "ImageColor", "ImageFont", "ImageOps", "ImageEnhance",
                 "ImageChops", "ImageFilter", "ImagePalette", "ImageFile"):
        (root / "PIL" / f"{name}.py").write_text(_PIL_MODULES.get(name, ""))
    return root


def corpus_files(shim: Path) -> list[tuple[Path, str]]:
    out = []
    packages = os.environ.get("NNLINT_BENCH_PACKAGES", "torchvision,timm").split(",")
    for package, names in CORPUS_FILES.items():
        if package not in packages:
            continue
        base = shim if package == "torchvision" else BENCH / "corpus" / package
        for name in names:
            path = base / package / "models" / f"{name}.py"
            if path.exists():
                out.append((path, f"{package}/models/{name}.py"))
    return out


def bench_corpus(limit: int | None) -> None:
    from nnlint.trace.runner import TraceOptions, trace_files

    shim = _shim(Path(tempfile.mkdtemp(prefix="nnlint-corpus-")))
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(shim), os.environ.get("PYTHONPATH")]))
    files = corpus_files(shim)[:limit]
    options = TraceOptions(jobs=2, verbose=True, timeout=float(os.environ.get("NNLINT_BENCH_TIMEOUT", "60")))
    started = time.monotonic()
    diagnostics, notes = trace_files([(str(p), display) for p, display in files], options)
    wall = time.monotonic() - started
    shutil.rmtree(shim, ignore_errors=True)
    paths, reasons = collections.Counter(), collections.Counter()
    traced = failed = skipped = 0
    for note in notes:
        if ": traced via " in note:
            traced += 1
            paths[note.split(": traced via ")[1].split()[0]] += 1
        elif ": not traced: " in note:
            failed += 1
            reason = note.split(": not traced: ")[1].split("; ")[-1]
            reasons[re.sub(r"\d+", "N", reason)[:110]] += 1
        elif ": skipped: " in note:
            skipped += 1
    total = traced + failed
    print(f"{len(files)} files, {total} model classes checked ({skipped} without forward skipped), "
          f"{wall:.1f} s wall")
    print(f"traced with no configuration: {traced}/{total} ({100 * traced / max(1, total):.0f}%)")
    print("by path:", dict(paths))
    print("failure reasons (last attempt of each model):")
    for reason, count in reasons.most_common(20):
        print(f"  {count:3} {reason}")
    print("hazards found:")
    for d in diagnostics:
        if d.code != "NNL790":
            print(f"  {d.code} {d.severity.label} {d.path}:{d.line} {d.message[:200]}")
    if os.environ.get("NNLINT_BENCH_NOTES"):
        print("\n".join(notes))


def main(argv: list[str]) -> None:
    what = argv[0] if argv else "fixtures"
    if what == "fixtures":
        bench_fixtures()
    elif what == "gpt2":
        bench_gpt2()
    elif what == "corpus":
        bench_corpus(int(argv[1]) if len(argv) > 1 else None)
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
