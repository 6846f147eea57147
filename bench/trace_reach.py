"""Reach and trust of tracing on real code nobody here wrote.

    python bench/trace_reach.py [PROJECT_DIR ...]    # default: /work/corpus/{examples,nanoGPT,minGPT}

Get the code first, outside the repository, e.g.
    git clone https://github.com/pytorch/examples /work/corpus/examples   (likewise karpathy/nanoGPT,
    karpathy/minGPT), and install what they import that the package index has (transformers,
    tiktoken, tqdm, gymnasium, matplotlib, pillow); run this script with that interpreter.

Each project directory is traced in one `trace_files` call (so call sites in one file build the
models of another), with no configuration at all. Prints every class that was not traced with
its category, every trace warning/error (NNL7xx, severity warning or error) for review, and

    reach = classes traced / classes whose imports are available

A class is "blocked" (left out of the denominator) only when constructing or running it needs a
package that is not importable here; classes skipped because they define no forward are left out.
"""

from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path

DEFAULT = [Path("/work/corpus") / name for name in ("examples", "nanoGPT", "minGPT")]
NOTE = re.compile(r"^(?P<where>.+?:\d+): (?P<name>\w+): (?P<what>traced via|not traced|skipped|blocked)(?P<rest>.*)$")


def python_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.py") if ".git" not in p.parts and "venv" not in p.parts)


def main(argv: list[str]) -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from nnlint.trace.runner import TraceOptions, WorkerPool, trace_files

    roots = [Path(a) for a in argv] or DEFAULT
    options = TraceOptions(verbose=True, jobs=int(os.environ.get("NNLINT_JOBS", "2")))
    traced, failed, blocked, skipped = [], [], [], []
    findings = []
    started = time.monotonic()
    with WorkerPool(options) as pool:
        for root in roots:
            files = [(str(p), str(p.relative_to(root.parent))) for p in python_files(root)]
            cwd = os.getcwd()
            os.chdir(root.parent)
            try:
                diagnostics, notes = trace_files(files, options, pool=pool)
            finally:
                os.chdir(cwd)
            for note in notes:
                match = NOTE.match(note)
                if not match:
                    continue
                key = f"{match['where']} {match['name']}"
                what = match["what"]
                if what == "traced via":
                    traced.append(key)
                elif what == "skipped":
                    skipped.append(key)
                elif what == "blocked" or "is not importable" in match["rest"]:
                    blocked.append(f"{key}{match['rest']}")
                else:
                    failed.append(f"{key}{match['rest']}")
            findings += [d for d in diagnostics if d.code != "NNL790" and d.severity.name in ("ERROR", "WARNING")]
    elapsed = time.monotonic() - started
    print(f"not traced ({len(failed)}):")
    for line in failed:
        print("  " + line[:300])
    print(f"blocked by a package that is not importable here ({len(blocked)}):")
    for line in blocked:
        print("  " + line[:200])
    print(f"trace warnings/errors ({len(findings)}), each to be reviewed:")
    for d in findings:
        print(f"  {d.path}:{d.line}: {d.code} [{d.severity.name.lower()}] {d.message}")
    available = len(traced) + len(failed)
    reach = len(traced) / available if available else 0.0
    print(f"classes: {len(traced)} traced, {len(failed)} not traced, {len(blocked)} blocked by missing "
          f"packages, {len(skipped)} skipped (no forward); {elapsed:.1f} s")
    print(f"reach: {len(traced)}/{available} = {reach:.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
