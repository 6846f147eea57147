"""Names: the last part of a dotted name, identifier words, and what a name or class says a value is.

One home for helpers every fact provider, static rule and the trace discovery use.
"""

from __future__ import annotations

import re

import libcst as cst

_WORDS = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")

OPTIMIZER_WORDS = frozenset({"opt", "optim", "optimizer", "optimiser", "optimizers", "optimisers", "optims"})
SCHEDULER_WORDS = frozenset({"sched", "scheduler", "schedulers"})
# Bases that make a class an nn.Module besides torch.nn's own classes.
MODULE_BASES = frozenset({
    "torch.nn.Module", "torch.nn.modules.module.Module", "lightning.LightningModule",
    "lightning.pytorch.LightningModule", "pytorch_lightning.LightningModule",
    "lightning.pytorch.core.LightningModule", "pytorch_lightning.core.LightningModule",
})


def final_name(expr: cst.BaseExpression | None) -> str | None:
    """`c` for `a.b.c` or `c`, else None: a cheap key for prefiltering calls."""
    if isinstance(expr, cst.Attribute):
        return expr.attr.value
    if isinstance(expr, cst.Name):
        return expr.value
    return None


def last_part(dotted: str | None) -> str:
    """`c` for "a.b.c"; "" for None."""
    return dotted.rsplit(".", 1)[-1] if dotted else ""


def name_tokens(name: str | None) -> frozenset[str]:
    """Lower-case words of an identifier: `optimizerD` -> {optimizer, d}, `val_loader` -> {val, loader}."""
    if not name:
        return frozenset()
    return frozenset(w.lower() for w in _WORDS.findall(name))


def is_optimizer_class(qualname: str | None) -> bool:
    """torch.optim.Adam, torch.optim.adamw.AdamW; not torch.optim.lr_scheduler.*"""
    return qualname is not None and qualname.startswith("torch.optim.") and ".lr_scheduler" not in qualname \
        and last_part(qualname)[:1].isupper()


def is_optimizer_name(dotted: str | None) -> bool:
    """A name that says "optimizer" (`opt`, `optimizerD`, `self.optim`) and not "scheduler"."""
    words = name_tokens(last_part(dotted))
    return bool(words & OPTIMIZER_WORDS) and not words & SCHEDULER_WORDS


def is_torch_nn_class(qualname: str | None) -> bool:
    """A class of torch.nn (`torch.nn.Linear`), which as a base makes an nn.Module; not nn.Parameter."""
    return qualname is not None and qualname.startswith("torch.nn.") and last_part(qualname)[:1].isupper() \
        and qualname != "torch.nn.Parameter"
