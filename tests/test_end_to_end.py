"""`nnlint check --static-only` on the realistic fixtures, in every format, agrees with their markers."""

from __future__ import annotations

import json

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
    out = _check(cli, "text").stdout
    for path, line, code in expected:
        assert path in out and code in out
    assert out.rstrip().splitlines()[-1].startswith("Found ")


def test_clean_twins_pass(cli, in_checkout):
    result = _check(cli, "json", "fixtures/clean")
    assert (result.exit_code, json.loads(result.stdout)) == (0, [])
