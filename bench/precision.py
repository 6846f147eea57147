"""Run every static rule over real code and list the findings for manual review.

    bash bench/fetch_corpus.sh && python bench/precision.py [FOLDER ...] [--sample N]

Prints counts by code (and any NNL003 crash), then up to N findings per code with the source line,
sampled deterministically, for classifying as true or false positives.
"""

from __future__ import annotations

import argparse
import random
from collections import Counter, defaultdict
from pathlib import Path

from nnlint.engine import FileTask, lint_files
from nnlint.registry import registry

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("folders", nargs="*", type=Path)
    parser.add_argument("--sample", type=int, default=5, help="findings shown per code")
    args = parser.parse_args()
    folders = args.folders or [p for p in sorted((HERE / "corpus").glob("*")) if p.is_dir() and p.name != "wheels"]
    files = sorted(str(p) for folder in folders for p in folder.rglob("*.py"))
    static = frozenset(code for code, rule in registry().items() if rule.layer in ("static", "tool"))
    results = lint_files([FileTask(f, f, static) for f in files])
    by_code = defaultdict(list)
    for result in results:
        for d in result.diagnostics:
            by_code[d.code].append(d)
    counts = Counter({code: len(found) for code, found in by_code.items()})
    print(f"{len(files)} files; findings by code:")
    for code, count in sorted(counts.items()):
        print(f"  {code} {registry()[code].name:<34} {count}")
    rng = random.Random(0)
    for code, found in sorted(by_code.items()):
        print(f"\n== {code} ({len(found)}) ==")
        for d in sorted(rng.sample(found, min(args.sample, len(found))), key=lambda d: d.sort_key()):
            print(f"{d.path}:{d.line}:{d.column}: {d.message}\n    {d.line_text.strip()}")


if __name__ == "__main__":
    main()
