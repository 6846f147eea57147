"""rules/ holds one generated page per rule; a drifted page fails here (regenerate: python -m nnlint.docs)."""

from __future__ import annotations

from conftest import ROOT

from nnlint.docs import expected_pages
from nnlint.registry import registry


def test_rule_pages_are_up_to_date():
    pages = expected_pages()
    on_disk = {p.name for p in (ROOT / "rules").glob("*.md")}
    assert on_disk == set(pages), "run: python -m nnlint.docs"
    for name, text in pages.items():
        assert (ROOT / "rules" / name).read_text(encoding="utf-8") == text, f"{name} drifted: run python -m nnlint.docs"


def test_rule_command_prints_the_page(cli):
    for code in registry():
        assert cli("rule", code).stdout == expected_pages()[f"{code}.md"]


def test_readme_rule_table_is_up_to_date():
    from nnlint.docs import readme_with_table

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert readme == readme_with_table(readme), "run: python -m nnlint.docs"
    for code, rule in registry().items():
        assert f"[{code}](rules/{code}.md)" in readme or f"[{code}]({code}.md)" in readme
