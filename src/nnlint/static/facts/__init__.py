"""Typed facts about one file, computed once per file by the engine and read by rules as `ctx.facts(Kind)`.

A provider is a `Facts` subclass. One with `visit_<Node>` / `leave_<Node>` methods joins the engine's
single walk, ahead of the rules, so a rule sees facts up to the node it is visiting; it is created
before the walk for every enabled rule that lists it in `uses`. One without handlers builds itself
on first request from the parsed module. If a provider crashes, the rules that use it stop (NNL003)
instead of reading partial facts.

- `classes.ModuleClasses`: which classes are nn.Modules (walk-fed); `classes.decide_modules` settles
  the same question for trace discovery, across files.
- `loops.LoopFacts`: training and evaluation loop events (built on request).
- `lossflow.LossFlowFacts`: what the loss rules' value-flow analysis needs from the walk.
- `names`: name helpers (last part, words, optimizer and torch.nn class recognition).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from nnlint.context import FileContext


class Facts:
    needs: ClassVar[tuple[type[Facts], ...]] = ()  # providers this one reads (created first)

    def __init__(self, ctx: FileContext):
        self.ctx = ctx

    @classmethod
    def walks(cls) -> bool:
        """Whether the provider is fed by the engine's walk (has visit_/leave_ handlers)."""
        return any(attr.startswith(("visit_", "leave_")) for attr in dir(cls))
