"""Every fixable INVALID example, fixed as `--fix --unsafe-fixes` would: the result parses, the rule no
longer fires, nothing outside the edits changes, and fixing again changes nothing."""

from __future__ import annotations

import difflib
import re

import libcst as cst
import pytest

from nnlint.diagnostics import Applicability
from nnlint.engine import fix_text, lint_text
from nnlint.fixes import compatible_fixes
from nnlint.registry import registry
from nnlint.rule import EXPECT_MARKER, Invalid

EVERY = frozenset({Applicability.SAFE, Applicability.UNSAFE})


def _cases():
    for code, rule in registry().items():
        if not rule.fixable:
            continue
        for index, example in enumerate(rule.INVALID):
            yield pytest.param(rule, re.sub(r"[ \t]*" + re.escape(EXPECT_MARKER) + r"[^\n]*", "", example),
                               id=f"{code}-{index}")


def _touched_lines(fixes) -> set[int]:
    return {line for fix in fixes for e in fix.edits for line in range(e.line, e.end_line + 1)}


def test_every_fixable_rule_has_examples_here():
    fixable = {code for code, rule in registry().items() if rule.fixable}
    assert {"NNL201", "NNL202", "NNL302", "NNL402", "NNL505", "NNL506", "NNL507", "NNL508"} <= fixable


@pytest.mark.parametrize("rule, example", list(_cases()))
def test_fix_is_sound(rule, example):
    enabled = frozenset({rule.code})
    found = lint_text(example, "example.py", enabled).diagnostics
    assert found, "the example must be flagged"
    fixes = compatible_fixes(example, [d.fix for d in found if d.fix], EVERY)
    fixed, applied, remaining = fix_text(example, "example.py", enabled, EVERY)
    if not fixes:
        assert fixed == example and not applied
        return
    cst.parse_module(fixed)  # still Python
    compile(fixed, "example.py", "exec")
    assert remaining.diagnostics == [], "the rule must no longer fire once fixed"
    # Only the lines the first pass edited differ (a later pass only runs when a fix was skipped).
    touched = _touched_lines(fixes)
    before, after = example.splitlines(), fixed.splitlines()
    for tag, i1, i2, _, _ in difflib.SequenceMatcher(a=before, b=after, autojunk=False).get_opcodes():
        if tag != "equal":
            changed = set(range(i1 + 1, i2 + 1)) or {i1, i1 + 1}  # an insertion sits between two lines
            assert changed & touched, f"lines {sorted(changed)} changed outside the edits {sorted(touched)}"
    again, applied_again, _ = fix_text(fixed, "example.py", enabled, EVERY)
    assert again == fixed and not applied_again


@pytest.mark.parametrize("code", sorted(c for c, r in registry().items() if r.fixable))
def test_cli_fix_matches_the_documented_fixed_code(cli, project, code):
    examples = [e for e in registry()[code].INVALID if isinstance(e, Invalid) and e.fixed is not None]
    paths = [project(f"ex{i}.py", e) for i, e in enumerate(examples)]
    cli("check", "--static-only", "--fix", "--unsafe-fixes", "--select", code, ".")
    for path, example in zip(paths, examples):
        got = re.sub(r"[ \t]*" + re.escape(EXPECT_MARKER) + r"[^\n]*", "", path.read_text())
        assert got == example.fixed
