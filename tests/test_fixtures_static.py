"""The static rules on the realistic fixtures: each `# expect: CODE[, CODE]` comment marks a finding.

Buggy fixtures must yield exactly the marked (line, code) pairs among static codes; clean twins none.
"""

from __future__ import annotations


import pytest
from conftest import FIXTURES, expected_findings

from nnlint.engine import FileTask, lint_file
from nnlint.registry import registry

STATIC_CODES = frozenset(code for code, rule in registry().items() if rule.layer in ("static", "tool"))


def _files(kind: str):
    return sorted((FIXTURES / kind).rglob("*.py"))


@pytest.mark.parametrize("path", _files("buggy"), ids=lambda p: p.name)
def test_buggy_fixture_findings_match_markers(path):
    found = lint_file(FileTask(str(path), path.name, STATIC_CODES)).diagnostics
    assert sorted((d.line, d.code) for d in found) == expected_findings(path, STATIC_CODES)


@pytest.mark.parametrize("path", _files("clean"), ids=lambda p: p.name)
def test_clean_fixture_has_no_static_findings(path):
    found = lint_file(FileTask(str(path), path.name, STATIC_CODES)).diagnostics
    assert [(d.line, d.code, d.message) for d in found] == []


def test_every_static_rule_has_a_buggy_fixture():
    marked = {code for path in _files("buggy") for _, code in expected_findings(path, STATIC_CODES)}
    missing = {c for c, r in registry().items() if r.layer == "static"} - marked
    assert not missing, f"rules without a realistic buggy fixture: {sorted(missing)}"
