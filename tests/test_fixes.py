"""The fix model: rules' node fixes become located edits, JSON `fix` and SARIF `fixes` carry them."""

from __future__ import annotations

import json
import pytest

from nnlint.diagnostics import Applicability, Edit, Fix
from nnlint.engine import lint_text
from nnlint.fixes import OverlappingEdits, apply_edits, apply_fixes
from nnlint.report import sarif

BUGGY = (
    "import torch\nimport torch.nn.functional as F\n\n"
    "def loss(x, y):\n    logp = torch.log(F.softmax(x, dim=1))\n    return -logp[y].mean()\n"
)


def test_log_of_softmax_carries_a_safe_located_fix():
    (diagnostic,) = lint_text(BUGGY, "m.py", frozenset({"NNL402"})).diagnostics
    fix = diagnostic.fix
    assert fix is not None and fix.applicability is Applicability.SAFE
    assert fix.edits == (Edit(5, 12, 5, 42, "F.log_softmax(x, dim=1)"),)
    assert BUGGY.split("\n")[4][11:41] == "torch.log(F.softmax(x, dim=1))"  # the edit spans exactly the call
    assert apply_fixes(BUGGY, [fix]) == BUGGY.replace("torch.log(F.softmax(x, dim=1))", "F.log_softmax(x, dim=1)")


def test_json_fix_has_the_documented_shape(cli, project):
    project("m.py", BUGGY)
    items = json.loads(cli("check", "--static-only", "--format", "json", "--select", "NNL402", "m.py").stdout)
    assert items[0]["fix"] == {
        "message": "replace with log_softmax",
        "applicability": "safe",
        "edits": [{"line": 5, "column": 12, "end_line": 5, "end_column": 42, "content": "F.log_softmax(x, dim=1)"}],
    }
    project("n.py", "import torch\nls = torch.log(torch.sigmoid(x))\n")  # flagged, nothing to rewrite
    items = json.loads(cli("check", "--static-only", "--format", "json", "--select", "NNL402", "n.py").stdout)
    assert items[0]["code"] == "NNL402" and items[0]["fix"] is None


def test_sarif_fixes_follow_the_diagnostic():
    diagnostics = lint_text(BUGGY, "src/m.py", frozenset({"NNL402"})).diagnostics
    log = json.loads(sarif.render(diagnostics))
    (result,) = log["runs"][0]["results"]
    (fix,) = result["fixes"]
    assert fix["description"]["text"] == "replace with log_softmax"
    (change,) = fix["artifactChanges"]
    assert change["artifactLocation"]["uri"] == "src/m.py"
    assert change["replacements"] == [{
        "deletedRegion": {"startLine": 5, "startColumn": 12, "endLine": 5, "endColumn": 42},
        "insertedContent": {"text": "F.log_softmax(x, dim=1)"},
    }]


def test_sarif_with_fixes_validates_against_official_schema(sarif_schema):
    import jsonschema

    diagnostics = lint_text(BUGGY, "src/m.py", frozenset({"NNL402"})).diagnostics
    log = json.loads(sarif.render(diagnostics))
    assert log["runs"][0]["results"][0]["fixes"]
    jsonschema.validate(log, sarif_schema)


def test_no_fix_where_a_comment_inside_the_call_would_be_lost():
    text = "import torch\nimport torch.nn.functional as F\nlogp = torch.log(  # stable?\n    F.softmax(x, 1))\n"
    (diagnostic,) = lint_text(text, "m.py", frozenset({"NNL402"})).diagnostics
    assert diagnostic.fix is None


def test_apply_edits_spans_lines_and_refuses_overlaps():
    text = "a = 1\nb = (2 +\n     3)\nc = 4\n"
    assert apply_edits(text, [Edit(2, 5, 3, 8, "5"), Edit(1, 5, 1, 6, "0")]) == "a = 0\nb = 5\nc = 4\n"
    assert apply_edits(text, [Edit(4, 1, 4, 1, "# x\n")]) == "a = 1\nb = (2 +\n     3)\n# x\nc = 4\n"
    with pytest.raises(OverlappingEdits):
        apply_edits(text, [Edit(1, 1, 1, 4, "x"), Edit(1, 3, 1, 5, "y")])


def test_apply_fixes_takes_only_allowed_levels_and_skips_a_conflicting_fix_whole():
    text = "x = 1\n"
    safe = Fix("one", (Edit(1, 5, 1, 6, "2"),))
    unsafe = Fix("two", (Edit(1, 1, 1, 2, "y"),), Applicability.UNSAFE)
    clash = Fix("three", (Edit(1, 5, 1, 6, "3"), Edit(1, 1, 1, 2, "z")))
    assert apply_fixes(text, [safe, unsafe, clash]) == "x = 2\n"
    both = frozenset({Applicability.SAFE, Applicability.UNSAFE})
    assert apply_fixes(text, [unsafe, safe], both) == "y = 2\n"
