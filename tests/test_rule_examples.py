"""Every rule's VALID and INVALID examples, run through the real engine (the Fixit pattern)."""

from __future__ import annotations

import pytest

from nnlint.engine import lint_text
from nnlint.rule import EXPECT_MARKER, registry

RULES = registry()


def _cases(kind: str):
    # Traced rules' examples need a forward pass: tests/test_trace_end_to_end.py runs them.
    for code, rule in RULES.items():
        if rule.layer == "trace":
            continue
        for index, example in enumerate(getattr(rule, kind)):
            yield pytest.param(rule, example, id=f"{code}-{kind.lower()}-{index}")


def _expected_lines(example: str) -> list[int]:
    return [n for n, line in enumerate(example.split("\n"), 1) if line.rstrip().endswith(EXPECT_MARKER)
            or f"{EXPECT_MARKER} " in line]


@pytest.mark.parametrize("rule, example", list(_cases("INVALID")))
def test_invalid_example_is_reported_at_marked_lines(rule, example):
    expected = _expected_lines(example)
    assert expected, "an INVALID example must mark the reported line(s) with '# <-'"
    found = lint_text(example, "example.py", frozenset({rule.code})).diagnostics
    assert [d.code for d in found] == [rule.code] * len(found)
    assert sorted(d.line for d in found) == expected


@pytest.mark.parametrize("rule, example", list(_cases("VALID")))
def test_valid_example_is_clean(rule, example):
    found = lint_text(example, "example.py", frozenset({rule.code})).diagnostics
    assert found == []


@pytest.mark.parametrize("code, rule", RULES.items())
def test_rule_has_metadata(code, rule):
    assert code.startswith("NNL") and len(code) == 6 and code[3:].isdigit()
    assert rule.name == rule.name.lower() and " " not in rule.name and "_" not in rule.name
    assert rule.doc().count("\n\n") >= 1, "docstring: a summary line, then why it matters and how to fix"
    if rule.layer in ("static", "trace") and code != "NNL790":
        assert rule.VALID and rule.INVALID, "rules need both kinds of examples"
