"""SARIF 2.1.0, as GitHub code scanning and other CI dashboards ingest it."""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from pathlib import Path
from urllib.parse import quote

from nnlint import __version__
from nnlint.diagnostics import Diagnostic, Severity
from nnlint.docs import rule_page, rule_url
from nnlint.registry import registry
from nnlint.report import readable

SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
_LEVELS = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}


def _rule_descriptor(rule) -> dict:
    return {
        "id": rule.code,
        "name": rule.name,
        "shortDescription": {"text": rule.summary()},
        "fullDescription": {"text": rule.doc()},
        "help": {"text": rule.doc(), "markdown": rule_page(rule)},
        "helpUri": rule_url(rule.code),
        "defaultConfiguration": {"level": _LEVELS[rule.severity]},
        "properties": {"tags": [rule.layer], "precision": "high" if rule.severity == Severity.ERROR else "medium"},
    }


def fingerprint(diagnostic: Diagnostic, occurrence: int) -> str:
    """Stable under unrelated edits: built from the rule, the file and the line's text, not its number."""
    normalized = " ".join(diagnostic.line_text.split())
    key = f"{diagnostic.code}\0{diagnostic.path}\0{normalized}\0{occurrence}"
    return hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()[:32]


def _uri(path: str) -> str:
    # A file name that is not valid UTF-8 reaches here with surrogate escapes: percent-encode its bytes.
    return quote(Path(path).as_posix().encode("utf-8", "surrogateescape"))


def _region(line: int, column: int, end_line: int, end_column: int) -> dict:
    return {"startLine": line, "startColumn": column, "endLine": end_line, "endColumn": end_column}


def _end_column(line: int, column: int, end_line: int, end_column: int) -> int:
    """At least one column wide on a one-line region: SARIF viewers hide empty ones."""
    return max(end_column, column + 1) if end_line == line else end_column


def _fixes(d: Diagnostic) -> list[dict]:
    """SARIF's proposed fixes: one artifact change of the diagnostic's own file (not in a notebook, whose
    edits are written into its JSON by `--fix`)."""
    if d.fix is None or d.cell is not None:
        return []
    replacements = [
        {"deletedRegion": _region(e.line, e.column, e.end_line, e.end_column), "insertedContent": {"text": e.content}}
        for e in d.fix.edits
    ]
    return [{
        "description": {"text": d.fix.message},
        "artifactChanges": [{"artifactLocation": {"uri": _uri(d.path), "uriBaseId": "%SRCROOT%"},
                             "replacements": replacements}],
        "properties": {"applicability": d.fix.applicability.value},
    }]


def render(diagnostics: list[Diagnostic]) -> str:
    rules = registry()
    codes = list(rules)
    seen: Counter = Counter()
    results = []
    for d in diagnostics:
        # A notebook's region is where the source line is written in the .ipynb file.
        line, column, end_line, end_column = d.file_span or (d.line, d.column, d.end_line, d.end_column)
        key = (d.code, d.path, " ".join(d.line_text.split()))
        occurrence = seen[key]
        seen[key] += 1
        result = (
            {
                "ruleId": d.code,
                "ruleIndex": codes.index(d.code),
                "level": _LEVELS[d.severity],
                "message": {"text": readable(d.message)},
                "locations": [
                    {
                        "physicalLocation": {
                            "artifactLocation": {"uri": _uri(d.path), "uriBaseId": "%SRCROOT%"},
                            "region": _region(line, column, end_line, _end_column(line, column, end_line, end_column)),
                        }
                    }
                ],
                "partialFingerprints": {"nnlintFingerprint/v1": fingerprint(d, occurrence)},
                "properties": {"source": d.source} | ({} if d.cell is None else {"cell": d.cell, "cellLine": d.line}),
            }
        )
        fixes = _fixes(d)
        if fixes:
            result["fixes"] = fixes
        results.append(result)
    root = Path(os.getcwd()).as_uri() + "/"
    log = {
        "$schema": SCHEMA_URI,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "nnlint",
                        "version": __version__,
                        "semanticVersion": __version__,
                        "informationUri": rule_url("README").rsplit("/", 1)[0],
                        "rules": [_rule_descriptor(rule) for rule in rules.values()],
                    }
                },
                "originalUriBaseIds": {"%SRCROOT%": {"uri": root}},
                "columnKind": "unicodeCodePoints",
                "results": results,
            }
        ],
    }
    return json.dumps(log, indent=2, ensure_ascii=False) + "\n"
