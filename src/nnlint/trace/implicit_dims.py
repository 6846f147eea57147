"""The ranks softmax calls without `dim` ran on: facts for NNL302's fix, not findings of their own.

torch picks the dimension from the input's rank (dim 0 for 0-, 1- and 3-D inputs, else 1), so a
traced forward knows what `F.softmax(x)` computes there. A functional call is read off the recorded
ops, at the span of the call. An `nn.Softmax()` built without `dim` is reported by NNL302 where it is
built, not where it is called: its constructor notes the building frame, and a forward pre-hook
notes each input's rank. Runs only in worker processes.
"""

from __future__ import annotations

import contextlib
import functools
import sys
import weakref
from collections.abc import Iterator

import torch
import torch.nn as nn

from nnlint.trace.checks import Loc, Locator, OpRecord, first_tensor

SOFTMAX_OPS = frozenset({"softmax", "log_softmax", "softmin"})
_MODULES = (nn.Softmax, nn.LogSoftmax, nn.Softmin)
# Each softmax module's building frame: (code, last instruction, line), enough to locate the call.
_BUILT_AT: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def remember_construction_sites() -> None:
    """Wrap the softmax modules' constructors to note the frame that builds each one (once per worker)."""
    for cls in _MODULES:
        if "__wrapped__" not in cls.__init__.__dict__:
            cls.__init__ = _noting_site(cls.__init__)  # type: ignore[method-assign]


def _noting_site(init):
    @functools.wraps(init)
    def noted(self, *args, **kwargs):
        init(self, *args, **kwargs)
        caller = sys._getframe(1)  # the code that called the class: `nn.Softmax()` itself
        _BUILT_AT[self] = (caller.f_code, caller.f_lasti, caller.f_lineno)

    return noted


def call_ranks(records: list[OpRecord]) -> list[tuple[Loc, int]]:
    """(where called, input rank) of every softmax op the trace recorded without a `dim`."""
    found = []
    for record in records:
        if record.op not in SOFTMAX_OPS or record.loc is None:
            continue
        dim = record.args[1] if len(record.args) > 1 else record.kwargs.get("dim")
        tensor = first_tensor(record.args[:1])
        if dim is None and tensor is not None:
            found.append((record.loc, len(tensor.shape)))
    return found


@contextlib.contextmanager
def module_ranks(model: nn.Module, locate: Locator) -> Iterator[list[tuple[Loc, int]]]:
    """While open, (where built, input rank) of each call of the model's softmax modules that the
    checked file built without `dim`. The module's own call shows in `call_ranks` too, at the line
    that calls it, where NNL302 reports nothing."""
    seen: list[tuple[Loc, int]] = []

    def hook(module, inputs, loc: Loc) -> None:
        if module.dim is None and inputs and isinstance(inputs[0], torch.Tensor):
            seen.append((loc, inputs[0].dim()))

    handles: list[torch.utils.hooks.RemovableHandle] = []
    for module in model.modules():
        site = _BUILT_AT.get(module) if isinstance(module, _MODULES) else None
        if site is not None and module.dim is None and locate.is_user_file(site[0].co_filename):
            handles.append(module.register_forward_pre_hook(functools.partial(hook, loc=locate.code_loc(*site))))
    try:
        yield seen
    finally:
        for handle in handles:
            handle.remove()


def as_rows(observed: list[tuple[Loc, int]]) -> list[list[int]]:
    """Plain data for the parent: [line, column, end_line, end_column, rank], each once."""
    return [list(row) for row in sorted({(loc.line, loc.column, loc.end_line, loc.end_column, rank)
                                         for loc, rank in observed})]
