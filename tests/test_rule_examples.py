"""Every rule's VALID and INVALID examples, run through the real engine (the Fixit pattern)."""

from __future__ import annotations

import re

import pytest

from nnlint.diagnostics import Applicability
from nnlint.engine import lint_text
from nnlint.fixes import apply_fixes
from nnlint.registry import registry
from nnlint.rule import EXPECT_MARKER, Invalid

RULES = registry()
APPLIED = frozenset({Applicability.SAFE, Applicability.UNSAFE})  # what `--fix --unsafe-fixes` applies


def _cases(kind: str):
    # Traced rules' examples need a forward pass (tests/test_trace_end_to_end.py runs them), run-time
    # rules' a training run (tests/test_run.py).
    for code, rule in RULES.items():
        if rule.layer in ("trace", "run"):
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
    if rule.layer in ("static", "trace", "run") and code != "NNL790":
        assert rule.VALID and rule.INVALID, "rules need both kinds of examples"


def _without_markers(example: str) -> str:
    return re.sub(r"[ \t]*" + re.escape(EXPECT_MARKER) + r"[^\n]*", "", example)


def _fixed_cases():
    for code, rule in RULES.items():
        for index, example in enumerate(rule.INVALID):
            if isinstance(example, Invalid) and example.fixed is not None:
                yield pytest.param(rule, example, id=f"{code}-fixed-{index}")


@pytest.mark.parametrize("rule, example", list(_fixed_cases()))
def test_fixes_turn_invalid_example_into_its_fixed_code(rule, example):
    assert rule.fixable, "only a fixable rule states fixed code"
    found = lint_text(example, "example.py", frozenset({rule.code})).diagnostics
    fixed = apply_fixes(example, [d.fix for d in found if d.fix], APPLIED)
    assert _without_markers(fixed) == example.fixed
    if example.fixed != _without_markers(example):  # a real rewrite must leave nothing to report
        assert lint_text(example.fixed, "example.py", frozenset({rule.code})).diagnostics == []


@pytest.mark.parametrize("code, rule", RULES.items())
def test_fixes_come_only_from_fixable_rules_that_show_one(code, rule):
    fixed = [e for e in rule.INVALID if isinstance(e, Invalid) and e.fixed is not None]
    if rule.fixable:
        assert any(e.fixed != _without_markers(e) for e in fixed), "a fixable rule shows one fix at work"
    for example in rule.INVALID if rule.layer not in ("trace", "run") else ():
        found = lint_text(example, "example.py", frozenset({code})).diagnostics
        assert rule.fixable or not any(d.fix for d in found)
