"""Rule pages: the Markdown in rules/, `nnlint rule CODE`, and SARIF help all come from the rule classes.

`python -m nnlint.docs [DIR]` regenerates the pages (default: rules/ of this checkout).
"""

from __future__ import annotations

import sys
from pathlib import Path

from nnlint.registry import registry
from nnlint.rule import EXPECT_MARKER, Invalid, Rule

DOCS_URL = "https://github.com/nnlint/nnlint/blob/main/rules"
LAYERS = {"tool": "nnlint itself", "static": "static (source only)", "trace": "traced (forward pass)",
          "run": "run-time"}


def rule_url(code: str) -> str:
    return f"{DOCS_URL}/{code}.md"


def _example_block(example: str) -> str:
    body = example.rstrip("\n").replace(EXPECT_MARKER, "# <- flagged")
    return f"```python\n{body}\n```\n"


def _fixed_block(example: str) -> str:
    """The code the example's safe fixes produce, when they change it."""
    if not isinstance(example, Invalid) or example.fixed is None:
        return ""
    if example.fixed == "\n".join(line.split(EXPECT_MARKER)[0].rstrip() for line in example.split("\n")):
        return ""
    return f"Fixed:\n\n```python\n{example.fixed.rstrip()}\n```\n"


def rule_page(rule: type[Rule]) -> str:
    summary, _, rest = rule.doc().partition("\n\n")
    parts = [
        f"# {rule.code}: {rule.name}\n",
        f"**Severity:** {rule.severity.label} · **Layer:** {LAYERS[rule.layer]}"
        + (" · **Fix:** available" if rule.fixable else "") + "\n",
        summary.replace("\n", " ") + "\n",
    ]
    if rest:
        parts.append(rest.strip() + "\n")
    if rule.INVALID:
        parts.append("## Flagged\n")
        parts += [block for e in rule.INVALID for block in (_example_block(e), _fixed_block(e)) if block]
    if rule.VALID:
        parts.append("## Not flagged\n")
        parts += [_example_block(e) for e in rule.VALID]
    parts.append(f"Suppress one occurrence with `# noqa: {rule.code}` on the reported line.\n")
    return "\n".join(parts)


def index_page(rules: dict[str, type[Rule]], link_prefix: str = "") -> str:
    rows = "".join(
        f"| [{code}]({link_prefix}{code}.md) | {r.name} | {r.severity.label} | {r.layer} | {r.summary()} |\n"
        for code, r in rules.items()
    )
    return (
        "# nnlint rules\n\nGenerated from the rule classes by `python -m nnlint.docs`; do not edit by hand.\n\n"
        "| code | name | severity | layer | summary |\n|---|---|---|---|---|\n" + rows
    )


def expected_pages() -> dict[str, str]:
    rules = registry()
    pages = {f"{code}.md": rule_page(rule) for code, rule in rules.items()}
    pages["README.md"] = index_page(rules)
    return pages


README_START, README_END = "<!-- rules:start -->", "<!-- rules:end -->"


def readme_with_table(readme: str) -> str:
    """README.md with the rule table between its markers replaced by the current one."""
    head, _, rest = readme.partition(README_START)
    _, _, tail = rest.partition(README_END)
    table = index_page(registry(), link_prefix="rules/").split("\n\n", 2)[2]
    return f"{head}{README_START}\n{table}{README_END}{tail}"


def write_pages(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    pages = expected_pages()
    for stale in directory.glob("NNL*.md"):
        if stale.name not in pages:
            stale.unlink()
    for name, text in pages.items():
        (directory / name).write_text(text, encoding="utf-8")


if __name__ == "__main__":
    checkout = Path(__file__).resolve().parents[2]
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else checkout / "rules"
    write_pages(target)
    readme = checkout / "README.md"
    readme.write_text(readme_with_table(readme.read_text(encoding="utf-8")), encoding="utf-8")
    print(f"wrote {len(expected_pages())} pages to {target}")
