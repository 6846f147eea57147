"""One JSON array of diagnostics, in the fixed schema other tools depend on."""

import json

from nnlint.diagnostics import Diagnostic


def render(diagnostics: list[Diagnostic]) -> str:
    return json.dumps([d.to_json() for d in diagnostics], indent=2, ensure_ascii=False) + "\n"
