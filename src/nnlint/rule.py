"""The rule classes: metadata every layer shares, and the base of static rules.

A static rule is one small class. It declares `visit_<Node>` / `leave_<Node>` methods for the libcst
node types it cares about; the engine walks each file once and calls every enabled rule's methods.
`VALID` and `INVALID` hold example snippets; in an INVALID example each line that must be reported
ends with the marker comment `# <-`. A rule that can fix what it reports sets `fixable`, passes a
`NodeFix` to `report`, and gives INVALID examples as `Invalid(code, fixed=...)` with the code its
fixes produce, safe and unsafe ones alike (`--fix --unsafe-fixes`; markers removed).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from nnlint.diagnostics import Applicability, Severity

if TYPE_CHECKING:
    import libcst as cst

    from nnlint.context import FileContext
    from nnlint.static.facts import Facts

EXPECT_MARKER = "# <-"


class Invalid(str):
    """An INVALID example that also states the code its fixes produce: `Invalid(code, fixed=...)`.

    It is the example text itself (a `str`), so everything that reads examples keeps working.
    """

    fixed: str | None

    def __new__(cls, code: str, fixed: str | None = None) -> Invalid:
        example = super().__new__(cls, code)
        example.fixed = fixed
        return example


@dataclass(frozen=True)
class NodeFix:
    """A fix in terms of the tree: each node is replaced by a new node or by source text.

    The engine turns it into a `diagnostics.Fix` of located edits; a rule never counts columns.
    """

    message: str
    replacements: tuple[tuple[cst.CSTNode, cst.CSTNode | str], ...]
    applicability: Applicability = Applicability.SAFE

_REGISTRY: dict[str, type[Rule]] = {}


class Rule:
    """Metadata of a rule, whatever layer reports it."""

    code: ClassVar[str]
    name: ClassVar[str]
    severity: ClassVar[Severity]
    layer: ClassVar[str]  # "tool", "static", "trace" or "run"
    VALID: ClassVar[tuple[str, ...]] = ()
    INVALID: ClassVar[tuple[str, ...]] = ()  # plain strings or `Invalid(code, fixed=...)`
    fixable: ClassVar[bool] = False  # whether some of its diagnostics carry a fix

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
    """Base of rules that read the source. One instance per file, so rules may keep state.

    `uses` lists the fact providers it reads with `self.ctx.facts(Kind)`; those fed by the walk must
    be listed, so that the engine creates them before it.
    """

    layer = "static"
    uses: ClassVar[tuple[type[Facts], ...]] = ()

    def __init__(self, ctx: FileContext):
        self.ctx = ctx

    def report(self, node: cst.CSTNode, message: str | None = None, fix: NodeFix | None = None) -> None:
        self.ctx.report(self, node, message or self.summary(), fix)


def registered() -> dict[str, type[Rule]]:
    """The rules whose modules have been imported so far, in code order (`nnlint.registry` imports them all)."""
    return dict(sorted(_REGISTRY.items()))
