"""Machine formats: GitHub workflow-command escaping, SARIF against the official schema and GitHub's needs."""

from __future__ import annotations

import json

import jsonschema
import pytest

from nnlint.diagnostics import Diagnostic, Severity
from nnlint.report import github, sarif
from nnlint.registry import registry



def diag(**changes) -> Diagnostic:
    fields = dict(code="NNL302", name="softmax-implicit-dim", message="m", path="a.py", line=3, column=9,
                  end_line=3, end_column=26, severity=Severity.WARNING, source="static",
                  line_text="probs = F.softmax(logits)")
    fields.update(changes)
    return Diagnostic(**fields)


@pytest.mark.parametrize(
    "message, expected",
    [
        ("plain", "plain"),
        ("100% sure", "100%25 sure"),
        ("two\nlines", "two%0Alines"),
        ("crlf\r\nend", "crlf%0D%0Aend"),
        ("already %0A escaped", "already %250A escaped"),
        ("a:b, c", "a:b, c"),  # ':' and ',' are only escaped in properties
        ("::error ::inject", "::error ::inject"),
    ],
)
def test_github_message_escaping(message, expected):
    out = github.render([diag(message=message)])
    assert out.endswith("::" + expected + "\n")
    assert out.count("\n") == 1


def test_github_property_escaping_and_levels():
    tricky = diag(path="dir,with:odd%chars/f.py", severity=Severity.ERROR)
    line = github.render([tricky])
    assert line.startswith("::error file=dir%2Cwith%3Aodd%25chars/f.py,line=3,col=9,endLine=3,endColumn=26,")
    assert "title=NNL302 softmax-implicit-dim::" in line
    assert github.render([diag(severity=Severity.INFO)]).startswith("::notice ")
    assert github.render([diag(severity=Severity.WARNING)]).startswith("::warning ")


def _sarif(diagnostics):
    return json.loads(sarif.render(diagnostics))


def test_sarif_validates_against_official_schema(sarif_schema):
    schema = sarif_schema
    log = _sarif([diag(), diag(code="NNL001", name="syntax-error", severity=Severity.ERROR, line=1, column=1,
                               end_line=1, end_column=2, path="dir with space/b.py"),
                  diag(severity=Severity.INFO, source="trace")])
    jsonschema.validate(log, schema)
    jsonschema.validate(_sarif([]), schema)


def test_sarif_has_what_github_code_scanning_requires():
    log = _sarif([diag(), diag(path="dir with space/b.py")])
    assert log["version"] == "2.1.0" and log["$schema"]
    run = log["runs"][0]
    driver = run["tool"]["driver"]
    assert driver["name"] == "nnlint" and driver["version"]
    rules = driver["rules"]
    assert [r["id"] for r in rules] == list(registry())
    for rule in rules:
        assert rule["shortDescription"]["text"] and rule["fullDescription"]["text"] and rule["help"]["text"]
        assert rule["helpUri"].endswith(f"/rules/{rule['id']}.md")
        assert rule["defaultConfiguration"]["level"] in ("error", "warning", "note")
    for result in run["results"]:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"] == "NNL302"
        assert result["level"] == "warning" and result["message"]["text"]
        location = result["locations"][0]["physicalLocation"]
        assert not location["artifactLocation"]["uri"].startswith(("/", "file:"))
        assert location["region"] == {"startLine": 3, "startColumn": 9, "endLine": 3, "endColumn": 26}
        assert result["partialFingerprints"]["nnlintFingerprint/v1"]
    assert run["results"][1]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "dir%20with%20space/b.py"


def test_sarif_fingerprints_survive_unrelated_edits_and_tell_twins_apart():
    before = _sarif([diag(line=3), diag(line=9)])["runs"][0]["results"]
    after = _sarif([diag(line=5), diag(line=12)])["runs"][0]["results"]  # lines inserted above
    prints_before = [r["partialFingerprints"]["nnlintFingerprint/v1"] for r in before]
    prints_after = [r["partialFingerprints"]["nnlintFingerprint/v1"] for r in after]
    assert prints_before == prints_after
    assert prints_before[0] != prints_before[1]  # the same line text twice is two findings
    changed = _sarif([diag(line_text="probs = F.softmax(other)")])["runs"][0]["results"][0]
    assert changed["partialFingerprints"]["nnlintFingerprint/v1"] != prints_before[0]
