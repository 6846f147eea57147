from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from nnlint.cli import main

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
_EXPECT = re.compile(r"#.*\bexpect:\s*(?P<codes>NNL\d{3}(?:\s*,\s*NNL\d{3})*)")


def expected_findings(path: Path | str, codes: frozenset[str]) -> list[tuple[int, str]]:
    """The (line, code) pairs a fixture's `# expect: CODE[, CODE]` comments mark, among `codes`, sorted."""
    pairs = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        match = _EXPECT.search(line)
        if match:
            pairs += [(number, c.strip()) for c in match.group("codes").split(",") if c.strip() in codes]
    return sorted(pairs)


@pytest.fixture(scope="session")
def sarif_schema() -> dict:
    """The official SARIF 2.1.0 schema from $NNLINT_SARIF_SCHEMA.

    A user's clone does not ship the schema, so without the variable the schema tests skip; CI sets
    NNLINT_REQUIRE_SARIF_SCHEMA=1 so that a missing schema fails there instead of skipping.
    """
    import json

    location = os.environ.get("NNLINT_SARIF_SCHEMA")
    if location and Path(location).is_file():
        return json.loads(Path(location).read_text(encoding="utf-8"))
    reason = f"SARIF schema not found (NNLINT_SARIF_SCHEMA={location!r})"
    if os.environ.get("NNLINT_REQUIRE_SARIF_SCHEMA"):
        pytest.fail(reason)
    pytest.skip(reason + ": set it to validate SARIF against the official schema")


@pytest.fixture
def cli():
    """Run `nnlint ARGS` in-process; returns click's Result (exit_code, stdout, stderr)."""
    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(main, [str(a) for a in args], catch_exceptions=False)

    return run


def run_nnlint(*args: str, cwd: Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run nnlint as a real process (`python -m nnlint`)."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "nnlint", *map(str, args)],
        cwd=cwd, env=full_env, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
    )


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A temporary folder that is the working directory; `write(name, text)` adds files."""
    monkeypatch.chdir(tmp_path)

    def write(name: str, text: str | bytes) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text, encoding="utf-8")
        return path

    write.root = tmp_path
    return write
