"""Building a model for real once, unless it turns out too big for that.

The constructor is the checked code's own: run it as few times as possible (each run repeats its
side effects and its cost). A model is first built for real while a torch function mode counts the
elements of the tensors created; past the fake-tensor threshold the build is abandoned and the model
is built again on the meta device (the fake-tensor path). Small models, the common case, are built
exactly once.
"""

from __future__ import annotations

import torch
from torch.overrides import TorchFunctionMode


class TooBig(BaseException):
    """The build created more elements than allowed; abandoned. A BaseException, so that a
    constructor's own `except Exception` cannot swallow it and go on allocating."""


class _Counting(TorchFunctionMode):
    def __init__(self, limit: int):
        super().__init__()
        self.limit = limit
        self.elements = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        result = func(*args, **(kwargs or {}))
        if isinstance(result, torch.Tensor) and not args_share_storage(result, args):
            self.elements += result.numel()
            if self.elements > self.limit:
                raise TooBig(self.elements)
        return result


def args_share_storage(result: torch.Tensor, args) -> bool:
    """In-place ops and views (`init.uniform_(w)`, `w.t()`) return tensors that allocate nothing new."""
    for arg in args:
        if isinstance(arg, torch.Tensor):
            try:
                if arg.untyped_storage().data_ptr() == result.untyped_storage().data_ptr():
                    return True
            except (RuntimeError, NotImplementedError):
                return False
    return False


def build_within(build, limit: int):
    """`build()` for real, or TooBig as soon as the tensors it creates exceed `limit` elements."""
    torch.manual_seed(0)
    with _Counting(limit):
        return build()
