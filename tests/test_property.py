"""Property: any program hypothesmith generates is checked without a crash, and a program Python
cannot compile is reported as NNL001 (never clean). Small budget here; `bench/property_fuzz.py` runs
the same property with a large one."""

from __future__ import annotations

import os
import warnings

import pytest

hypothesis = pytest.importorskip("hypothesis")
hypothesmith = pytest.importorskip("hypothesmith")

from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

from nnlint.engine import lint_text  # noqa: E402
from nnlint.registry import registry  # noqa: E402

EXAMPLES = int(os.environ.get("NNLINT_HYPOTHESIS_EXAMPLES", "25"))
LARGE_BUDGET = "NNLINT_HYPOTHESIS_EXAMPLES" in os.environ  # bench/property_fuzz.py
ALL = frozenset(registry())
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, derandomize=not LARGE_BUDGET,
                    suppress_health_check=list(HealthCheck))


def compiles(source: str) -> bool:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            compile(source, "<p>", "exec", dont_inherit=True)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    return True


def check_property(source: str) -> None:
    result = lint_text(source, "p.py", ALL)
    found = result.diagnostics + result.suppressed
    assert not [d for d in found if d.code == "NNL003"], [d.message for d in found]
    lines = source.split("\n")
    for d in found:
        assert 1 <= d.line <= max(len(lines), 1) and d.column >= 1
        assert "\n" not in d.message
    if not compiles(source):
        assert [d.code for d in result.diagnostics] == ["NNL001"]


@SETTINGS
@given(hypothesmith.from_grammar())
def test_grammar_programs(source):
    check_property(source)


@pytest.mark.skipif(not LARGE_BUDGET, reason="from_node generation is slow: bench/property_fuzz.py runs it")
@SETTINGS
@given(hypothesmith.from_node())
def test_ast_programs(source):
    check_property(source)


@SETTINGS
@given(hypothesmith.from_grammar(), st.sampled_from(["\r\n", "\r"]), st.booleans())
def test_line_endings_and_bom_do_not_change_findings(source, ending, bom):
    """A program's findings (code, line, column) are the same whatever its line endings or BOM."""
    from nnlint.source import decode

    plain = lint_text(source, "p.py", ALL).diagnostics
    data = (b"\xef\xbb\xbf" if bom else b"") + source.replace("\n", ending).encode("utf-8", "surrogatepass")
    try:
        text = decode(data)
    except Exception:  # noqa: BLE001 - e.g. a lone surrogate the generator produced
        return
    other = lint_text(text, "p.py", ALL).diagnostics
    assert [(d.code, d.line, d.column) for d in other] == [(d.code, d.line, d.column) for d in plain]


@SETTINGS
@given(hypothesmith.from_grammar())
def test_reparse_of_generated_programs_equals_a_full_parse(source):
    """An editor's reparse (pieces cut before top-level statements) builds libcst's own module."""
    import libcst

    from nnlint.reparse import Reparser

    if not compiles(source):
        return
    try:
        full = libcst.parse_module(source)
    except Exception:  # noqa: BLE001 - what libcst rejects is lint_text's NNL001, tested above
        return
    reparser = Reparser()
    assert reparser.parse(source).deep_equals(full)
    assert reparser.parse("EDITED = 1\n" + source).deep_equals(libcst.parse_module("EDITED = 1\n" + source))
