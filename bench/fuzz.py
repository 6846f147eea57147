"""Fuzz `nnlint check --static-only` with real-sized hostile programs; count crashes, tracebacks, exit codes.

    python bench/fuzz.py [--programs 5000] [--batch 50] [--seed 0] [--corpus DIR ...] [--keep DIR]
                         [--max-seed-bytes N] [--time-budget SECONDS]

Programs are made from real files (this repository's sources and fixtures, plus any --corpus folders
such as /work/corpus): lines deleted, duplicated, swapped or truncated, brackets and tokens inserted,
expressions nested hundreds to thousands deep, files spliced together, re-encoded (latin-1 with and
without a cookie, UTF-16, a BOM, stray invalid bytes, NUL bytes), line endings turned to CR, CRLF or a
mix, and file names with spaces, non-ASCII or non-UTF-8 bytes. They are checked in batches (a folder
per run, so the process pool is exercised) in rotating output formats, and a few one file at a time.

A run fails the fuzz when it exits with anything but 0, 1 or 2, prints a traceback, times out, writes
a report that does not parse (json/sarif), leaves a checked file without its outcome, or reports
NNL003 (nnlint crashed on a file). Failing programs are kept under --keep for reproduction.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FORMATS = ("json", "sarif", "text", "concise", "github")
NESTERS = [("(", ")"), ("[", "]"), ("{", "}"), ("f(", ")"), ("F.softmax(", ")"), ("not ", ""), ("-", ""),
           ("lambda: ", ""), ("a.b(", ")"), ("[x for x in ", "]"), ("await ", ""), ("x if ", " else y")]
TOKENS = ["(", ")", "[", "]", "{", "}", ":", ",", "lambda", "def", "class", "return", "yield", "await",
          "async", "\\", "'", '"', '"""', "#", "@", "=", "==", ":=", "**", "*", "->", "...", "\t", " ", "\n",
          "if", "else", "for", "in", "import", "from", "torch", "nn.Linear(", "F.softmax(x", "é", "\u2028",
          "\x0c", "\x1b", "0x", "1e", "f'{", "}'", "rb'", "nonlocal x", "global y", "break", "del"]


def seeds(corpus: list[Path], max_bytes: int) -> list[bytes]:
    folders = [ROOT / "src", ROOT / "fixtures", ROOT / "tests", ROOT / "bench", *corpus]
    files = [p for folder in folders if folder.exists() for p in sorted(folder.rglob("*.py"))]
    out = []
    for path in files:
        try:
            data = path.read_bytes()
        except OSError:
            continue
        if 0 < len(data) <= max_bytes:
            out.append(data)
    return out


def _lines(data: bytes) -> list[bytes]:
    return data.split(b"\n")


def mutate_lines(rng: random.Random, data: bytes) -> bytes:
    lines = _lines(data)
    for _ in range(rng.randint(1, 6)):
        if not lines:
            break
        i, j = sorted(rng.randrange(len(lines)) for _ in range(2))
        op = rng.randrange(5)
        if op == 0:
            del lines[i:j + 1]
        elif op == 1:
            lines[i:i] = lines[i:j + 1]
        elif op == 2:
            lines[i], lines[j] = lines[j], lines[i]
        elif op == 3:
            lines[i] = (b" " * rng.choice([1, 2, 3, 4, 8]) if rng.random() < 0.5 else b"\t") + lines[i]
        else:
            lines.insert(i, rng.choice(lines))
    return b"\n".join(lines)


def insert_tokens(rng: random.Random, data: bytes) -> bytes:
    text = data.decode("utf-8", "surrogateescape")
    for _ in range(rng.randint(1, 10)):
        at = rng.randrange(len(text) + 1)
        text = text[:at] + rng.choice(TOKENS) + text[at:]
    return text.encode("utf-8", "surrogateescape")


def truncate(rng: random.Random, data: bytes) -> bytes:
    return data[:rng.randrange(len(data) + 1)]


def nest(rng: random.Random, data: bytes) -> bytes:
    opener, closer = rng.choice(NESTERS)
    depth = rng.choice([10, 100, 190, 199, 200, 201, 500, 1000, 1300, 3000, 10000])
    expression = opener * depth + "x" + closer * depth
    line = rng.choice([f"y = {expression}", f"def f():\n    return {expression}",
                       f"class C:\n    z = {expression}", f"print({expression})"])
    lines = _lines(data)
    lines.insert(rng.randrange(len(lines) + 1), line.encode())
    return b"\n".join(lines)


def deep_blocks(rng: random.Random, data: bytes) -> bytes:
    depth = rng.choice([20, 99, 100, 101, 150])
    keyword = rng.choice(["if x:", "for i in y:", "while z:", "with a:", "try:", "def f():", "class C:"])
    body = "".join(" " * i + keyword + "\n" for i in range(depth)) + " " * depth + "pass\n"
    return data + b"\n" + body.encode()


def splice(rng: random.Random, data: bytes, other: bytes) -> bytes:
    a, b = _lines(data), _lines(other)
    return b"\n".join(a[:rng.randrange(len(a) + 1)] + b[rng.randrange(len(b) + 1):])


def reencode(rng: random.Random, data: bytes) -> bytes:
    text = data.decode("utf-8", "replace")
    op = rng.randrange(8)
    if op == 0:
        return b"\xef\xbb\xbf" + data
    if op == 1:
        return b"# -*- coding: latin-1 -*-\n" + text.encode("latin-1", "replace")
    if op == 2:
        return text.encode("latin-1", "replace") + "\n# caf\xe9\n".encode("latin-1")
    if op == 3:
        return text.encode("utf-16")
    if op == 4:
        at = rng.randrange(len(data) + 1)
        return data[:at] + bytes([rng.randrange(128, 256)]) + data[at:]
    if op == 5:
        at = rng.randrange(len(data) + 1)
        return data[:at] + b"\x00" + data[at:]
    if op == 6:
        return b"# coding: " + rng.choice([b"klingon", b"utf-8", b"ascii", b"cp1252", b"utf-8-sig"]) + b"\n" + data
    return b"\xef\xbb\xbf# -*- coding: latin-1 -*-\n" + data  # BOM with a conflicting cookie


def line_endings(rng: random.Random, data: bytes) -> bytes:
    lines = _lines(data)
    choice = rng.randrange(3)
    if choice == 0:
        return b"\r".join(lines)
    if choice == 1:
        return b"\r\n".join(lines)
    return b"".join(line + rng.choice([b"\n", b"\r", b"\r\n"]) for line in lines)


def huge_line(rng: random.Random, data: bytes) -> bytes:
    return data + b"\nTABLE = [" + b", ".join(b"%d" % i for i in range(rng.choice([1000, 50_000]))) + b"]\n"


MUTATIONS = [mutate_lines, insert_tokens, truncate, nest, deep_blocks, reencode, line_endings, huge_line]


def program(rng: random.Random, pool: list[bytes]) -> bytes:
    data = rng.choice(pool)
    for _ in range(rng.choice([1, 1, 2, 3])):
        if rng.random() < 0.1:
            data = splice(rng, data, rng.choice(pool))
        else:
            data = rng.choice(MUTATIONS)(rng, data) or data
    return data


def file_name(rng: random.Random, index: int) -> bytes:
    kind = rng.randrange(10)
    stem = b"p%05d" % index
    if kind == 0:
        stem += b" with space"
    elif kind == 1:
        stem += "_\u00fcnicode_\u4e2d".encode()
    elif kind == 2:
        stem += b"_bad\xff\xfe"
    return stem + b".py"


def run(args: list[str], cwd: str, timeout: float) -> tuple[int | None, str, str, float]:
    started = time.perf_counter()
    try:
        done = subprocess.run([sys.executable, "-m", "nnlint", *args], cwd=cwd, capture_output=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return None, "", "", time.perf_counter() - started
    return (done.returncode, done.stdout.decode("utf-8", "replace"), done.stderr.decode("utf-8", "replace"),
            time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--programs", type=int, default=5000)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--corpus", type=Path, action="append", default=[])
    parser.add_argument("--keep", type=Path, default=Path(tempfile.gettempdir()) / "nnlint-fuzz-failures")
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument("--max-seed-bytes", type=int, default=400_000)
    parser.add_argument("--time-budget", type=float, default=0, help="stop making programs after this many seconds")
    options = parser.parse_args()
    rng = random.Random(options.seed)
    pool = seeds(options.corpus, options.max_seed_bytes)
    env_note = f"{len(pool)} seed files"
    stats: Counter = Counter()
    exit_codes: Counter = Counter()
    failures: list[str] = []
    slowest = 0.0
    made = 0
    started = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="nnlint-fuzz-"))
    try:
        while made < options.programs and not (
                options.time_budget and time.perf_counter() - started > options.time_budget):
            batch = work / f"b{made:06d}"
            batch.mkdir()
            size = min(options.batch if rng.random() < 0.9 else 1, options.programs - made)
            names = []
            for i in range(size):
                name = file_name(rng, made + i)
                with open(os.path.join(os.fsencode(batch), name), "wb") as handle:
                    handle.write(program(rng, pool))
                names.append(name)
            made += size
            fmt = rng.choice(FORMATS)
            target = "." if size > 1 else os.fsdecode(names[0])
            code, out, err, seconds = run(["check", "--static-only", "--format", fmt, "--jobs", "2", target],
                                          str(batch), options.timeout)
            slowest = max(slowest, seconds)
            stats["runs"] += 1
            exit_codes["timeout" if code is None else code] += 1
            problems = []
            if code is None:
                problems.append("timeout")
            elif code not in (0, 1, 2):
                problems.append(f"exit {code}")
            if "Traceback" in err or "Traceback" in out:
                problems.append("traceback")
            if code is not None and fmt in ("json", "sarif"):
                try:
                    report = json.loads(out)
                except ValueError:
                    problems.append("invalid report")
                else:
                    items = report if fmt == "json" else report["runs"][0]["results"]
                    codes = Counter(i["code"] if fmt == "json" else i["ruleId"] for i in items)
                    stats["diagnostics"] += sum(codes.values())
                    for c in ("NNL001", "NNL002", "NNL003", "NNL005"):
                        stats[c] += codes[c]
                    if codes["NNL003"]:
                        problems.append("NNL003")
            if problems:
                stats["failed runs"] += 1
                for p in problems:
                    stats[f"problem: {p}"] += 1
                kept = options.keep / batch.name
                shutil.rmtree(kept, ignore_errors=True)
                shutil.copytree(batch, kept)
                (kept / "_stderr.txt").write_text(err[-5000:])
                failures.append(f"{batch.name}: {', '.join(problems)}")
            shutil.rmtree(batch, ignore_errors=True)
            if stats["runs"] % 20 == 0:
                print(f"{made} programs, {stats['runs']} runs, {stats['failed runs']} failed, "
                      f"{time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    summary = {"programs": made, "seed": options.seed, "seeds": env_note, "runs": stats["runs"],
               "exit_codes": {str(k): v for k, v in sorted(exit_codes.items(), key=str)},
               "failed_runs": stats["failed runs"],
               "problems": {k.removeprefix("problem: "): v for k, v in stats.items() if k.startswith("problem")},
               "diagnostics_in_json_reports": stats["diagnostics"],
               "NNL001": stats["NNL001"], "NNL002": stats["NNL002"], "NNL003": stats["NNL003"],
               "NNL005": stats["NNL005"], "slowest_run_s": round(slowest, 1),
               "wall_s": round(time.perf_counter() - started, 1), "failures": failures[:50]}
    print(json.dumps(summary, indent=2))
    return 1 if stats["failed runs"] else 0


if __name__ == "__main__":
    sys.exit(main())
