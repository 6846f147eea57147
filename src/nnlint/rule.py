"""The rule classes: metadata every layer shares, and the base of static rules.

A static rule is one small class. It declares `visit_<Node>` / `leave_<Node>` methods for the libcst
node types it cares about; the engine walks each file once and calls every enabled rule's methods.
`VALID` and `INVALID` hold example snippets; in an INVALID example each line that must be reported
ends with the marker comment `# <-`.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, ClassVar

from nnlint.diagnostics import Severity

if TYPE_CHECKING:
    import libcst as cst

    from nnlint.context import FileContext

EXPECT_MARKER = "# <-"

_REGISTRY: dict[str, type["Rule"]] = {}


class Rule:
    """Metadata of a rule, whatever layer reports it."""

    code: ClassVar[str]
    name: ClassVar[str]
    severity: ClassVar[Severity]
    layer: ClassVar[str]  # "tool", "static", "trace" or "run"
    VALID: ClassVar[tuple[str, ...]] = ()
    INVALID: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "code" in cls.__dict__:
            if cls.code in _REGISTRY:
                raise TypeError(f"duplicate rule code {cls.code}")
            _REGISTRY[cls.code] = cls

    @classmethod
    def doc(cls) -> str:
        return inspect.cleandoc(cls.__doc__ or "")

    @classmethod
    def summary(cls) -> str:
        return cls.doc().split("\n\n", 1)[0].replace("\n", " ")


class StaticRule(Rule):
    """Base of rules that read the source. One instance per file, so rules may keep state."""

    layer = "static"

    def __init__(self, ctx: "FileContext"):
        self.ctx = ctx

    def report(self, node: "cst.CSTNode", message: str | None = None) -> None:
        self.ctx.report(self, node, message or self.summary())


def registry() -> dict[str, type[Rule]]:
    """Every rule, keyed by code, in code order."""
    import nnlint.static  # noqa: F401  (registers the static rules)
    import nnlint.tool_rules  # noqa: F401
    import nnlint.trace.hazards  # noqa: F401  (metadata only; never imports torch)
    import nnlint.run.rules  # noqa: F401  (metadata only; never imports torch)

    return dict(sorted(_REGISTRY.items()))
