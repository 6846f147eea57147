"""Every rule of every layer, collected from the rule families.

It sits above the rule base and the families: `rule.py` knows none of them, each family imports
`rule.py`, and this module imports the families (trace's only as torch-free metadata).
"""

from __future__ import annotations

from nnlint.rule import Rule, registered


def registry() -> dict[str, type[Rule]]:
    """Every rule, keyed by code, in code order."""
    import nnlint.static.data  # noqa: F401  (each family registers its rules)
    import nnlint.static.loop  # noqa: F401
    import nnlint.static.losses  # noqa: F401
    import nnlint.static.reproducibility  # noqa: F401
    import nnlint.static.shapes  # noqa: F401
    import nnlint.tool_rules  # noqa: F401
    import nnlint.trace.hazards  # noqa: F401  (metadata only; never imports torch)
    import nnlint.run.rules  # noqa: F401  (metadata only; never imports torch)

    return registered()
