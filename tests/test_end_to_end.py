"""`nnlint check --static-only` on the realistic fixtures, in every format, agrees with their markers."""

from __future__ import annotations

import json
import re

import jsonschema
import pytest
from conftest import FIXTURES, expected_findings
from test_fixtures_static import STATIC_CODES


@pytest.fixture(scope="module")
def expected():
    root = FIXTURES.parent
    pairs = []
    for path in sorted((FIXTURES / "buggy").rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        pairs += [(rel, line, code) for line, code in expected_findings(path, STATIC_CODES)]
    return sorted(pairs)


@pytest.fixture
def in_checkout(monkeypatch):
    monkeypatch.chdir(FIXTURES.parent)


def _check(cli, fmt, folder="fixtures/buggy"):
    return cli("check", "--static-only", "--format", fmt, folder)


def test_json(cli, in_checkout, expected):
    result = _check(cli, "json")
    assert result.exit_code == 1
    assert sorted((i["path"], i["line"], i["code"]) for i in json.loads(result.stdout)) == expected


def test_concise(cli, in_checkout, expected):
    lines = _check(cli, "concise").stdout.splitlines()
    assert sorted((p, int(n), rest.split()[0]) for p, n, _, rest in (l.split(":", 3) for l in lines)) == expected


def test_github(cli, in_checkout, expected):
    lines = _check(cli, "github").stdout.splitlines()
    assert len(lines) == len(expected)
    assert all(l.startswith(("::error file=fixtures/buggy/", "::warning file=fixtures/buggy/", "::notice file="))
               for l in lines)


def test_sarif_validates_against_official_schema(cli, in_checkout, sarif_schema):
    jsonschema.validate(json.loads(_check(cli, "sarif").stdout), sarif_schema)


def test_sarif(cli, in_checkout, expected):
    log = json.loads(_check(cli, "sarif").stdout)
    results = log["runs"][0]["results"]
    found = sorted(
        (r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
         r["locations"][0]["physicalLocation"]["region"]["startLine"], r["ruleId"]) for r in results
    )
    assert found == expected


def test_text(cli, in_checkout, expected):
    out = _check(cli, "text")
    found, path, echoed = [], None, []
    for line in out.stdout.splitlines():
        if line.startswith("fixtures/"):  # a file's heading
            path = line.strip()
        elif re.match(r"^  \d+:\d+ ", line):  # "  24:25   warning  NNL402 log-of-softmax  message"
            position, _severity, code = line.split()[:3]
            found.append((path, int(position.split(":")[0]), code))
        elif re.match(r"^ +\d+ \| ", line):  # the echoed source line under each finding
            echoed.append(int(line.split("|")[0]))
    assert sorted(found) == expected
    assert echoed == [line for _, line, _ in found]
    total = len(expected)
    assert out.stdout.rstrip().splitlines()[-1].startswith("Found ")
    summary = out.stdout.rstrip().splitlines()[-1]
    counted = sum(int(n) for n in re.findall(r"(\d+) (?:errors?|warnings?|infos?)\b", summary.split(" in ")[0]))
    assert counted == total, summary


def test_clean_twins_pass(cli, in_checkout):
    result = _check(cli, "json", "fixtures/clean")
    assert (result.exit_code, json.loads(result.stdout)) == (0, [])
