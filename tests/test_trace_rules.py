"""Traced rules come from one source: each names its check, the analyzer runs exactly those, and a
finding with an unknown code is an error (NNL003), never dropped."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")

from nnlint.registry import registry  # noqa: E402
from nnlint.trace.analyze import resolve_check  # noqa: E402
from nnlint.trace.hazards import TraceRule, trace_rules  # noqa: E402


def test_every_traced_code_but_not_traced_has_a_resolvable_check():
    traced = {code for code, rule in registry().items() if rule.layer == "trace"}
    assert set(trace_rules()) == traced - {"NNL790"}
    for rule in trace_rules().values():
        assert rule.scope in ("op", "run")
        assert callable(resolve_check(rule))


def test_a_misspelt_check_is_an_error():
    class Misspelt(TraceRule):  # no `code`: not registered
        check = "checks:check_braodcast"

    with pytest.raises(LookupError, match="does not resolve"):
        resolve_check(Misspelt)


def test_a_finding_with_an_unknown_code_becomes_an_internal_error():
    from nnlint.trace.discover import discover
    from nnlint.trace.runner import _File, _finding_diagnostic

    found = discover("import torch.nn as nn\nclass Net(nn.Module):\n    def forward(self, x):\n        return x\n")
    file = _File("net.py", "net.py", found)
    (cls,) = found.models()
    good = _finding_diagnostic({"code": "NNL701", "message": "m", "line": 4, "column": 9}, file, cls)
    assert (good.code, good.line, good.end_column, good.source) == ("NNL701", 4, 10, "trace")
    for bad in ({"code": "NNL799", "message": "m", "line": 4, "column": 9},
                {"code": "NNL402", "message": "m", "line": 4, "column": 9},  # a static code
                {"code": "NNL701", "line": 4}):
        diagnostic = _finding_diagnostic(bad, file, cls)
        assert diagnostic.code == "NNL003" and diagnostic.line == 2, bad
