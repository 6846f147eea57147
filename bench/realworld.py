"""Precision of the static rules on real repositories: every warning and error, with its verdict.

    bash bench/fetch_realworld.sh            # the 19 repositories of issue 12, into /work/corpus/issue12
    python bench/realworld.py [ROOT] [--verdicts bench/realworld_verdicts.tsv] [--unreviewed]

Runs the static rules over every *.py and *.ipynb under ROOT (one folder per repository), lists the
warnings and errors, and joins them with the verdicts file (`KEY<TAB>true|false<TAB>why`, KEY being
`repo/path[:cell N]:line CODE`, written by a person reading each finding). Prints the count per code,
the precision over the reviewed findings, and the findings that have no verdict yet.
"""

from __future__ import annotations

import argparse
import os
from collections import Counter
from pathlib import Path

from nnlint.check import CheckOptions, run_check
from nnlint.diagnostics import Severity

HERE = Path(__file__).resolve().parent


def key(d) -> str:
    where = f":cell {d.cell}" if d.cell is not None else ""
    return f"{d.path}{where}:{d.line} {d.code}"


def load_verdicts(path: Path) -> dict[str, tuple[str, str]]:
    verdicts = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip() and not line.startswith("#"):
                finding, verdict, why = (line.split("\t") + ["", ""])[:3]
                verdicts[finding] = (verdict, why)
    return verdicts


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("root", nargs="?", type=Path, default=Path("/work/corpus/issue12"))
    parser.add_argument("--verdicts", type=Path, default=HERE / "realworld_verdicts.tsv")
    parser.add_argument("--unreviewed", action="store_true", help="print only the findings without a verdict")
    args = parser.parse_args()
    verdicts = load_verdicts(args.verdicts)
    os.chdir(args.root)  # paths in the report and the keys are relative to it
    outcome = run_check(CheckOptions(paths=sorted(p.name for p in Path(".").iterdir() if p.is_dir()),
                                     static_only=True))
    found = [d for d in outcome.diagnostics if d.severity >= Severity.WARNING]
    infos = [d for d in outcome.diagnostics if d.severity < Severity.WARNING]
    judged = Counter()
    per_code: dict[str, Counter] = {}
    missing = []
    for d in found:
        verdict = verdicts.get(key(d), ("", ""))[0]
        per_code.setdefault(d.code, Counter())[verdict or "unreviewed"] += 1
        judged[verdict or "unreviewed"] += 1
        if not verdict:
            missing.append(d)
    print(f"{outcome.summary.files_checked} files; {len(found)} warnings/errors, {len(infos)} info")
    for code, counts in sorted(per_code.items()):
        print(f"  {code}: " + ", ".join(f"{n} {v}" for v, n in sorted(counts.items())))
    reviewed = judged["true"] + judged["false"]
    if reviewed:
        print(f"precision: {judged['true']}/{reviewed} = {judged['true'] / reviewed:.1%} true "
              f"({judged['unreviewed']} unreviewed)")
    stale = set(verdicts) - {key(d) for d in found}
    if stale:
        print(f"{len(stale)} verdicts no longer match a finding (fixed, or moved)")
    for d in (missing if args.unreviewed else found):
        verdict, why = verdicts.get(key(d), ("?", ""))
        print(f"{key(d)}\t{verdict}\t{why}\n    {d.message[:150]}\n    | {d.line_text.strip()[:150]}")


if __name__ == "__main__":
    main()
