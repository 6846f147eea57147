"""Path 2: run forward eagerly under a TorchFunctionMode that records every torch-level op.

Used when torch.fx cannot trace the model (data-dependent control flow, unsupported Python). Each
top-level torch call (functional, Tensor method or operator) becomes an OpRecord with its argument
and result shapes and the innermost frame in the checked file, so calls into library code are
attributed to the user line that made them. Calls made inside a recorded op are not seen, because
the mode is off while the op runs: `nn.MSELoss` is recorded once, as `mse_loss`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten

from nnlint.trace.checks import (
    ACTIVATIONS,
    FACTORIES,
    NOT_OPS,
    Locator,
    OpRecord,
    activation_stats,
    op_name,
    relu_stats,
    summarize,
)

_DEVICE_GETTER = torch.Tensor.device.__get__


class ForwardFailed(Exception):
    """The forward pass raised; `records` holds what ran up to (and including) the failing op."""

    def __init__(self, cause: BaseException, records: list[OpRecord]):
        super().__init__(f"{type(cause).__name__}: {cause}")
        self.cause = cause
        self.records = records


class _Recorder(TorchFunctionMode):
    def __init__(self, locate: Locator, values: bool):
        super().__init__()
        self.locate = locate
        self.values = values
        self.records: list[OpRecord] = []
        # Devices read off tensors (`x.device`): a factory given one of these follows its input.
        self._tensor_devices: dict[int, torch.device] = {}
        self.producers: dict[int, OpRecord] = {}
        self._alive: list[Any] = []  # keeps ids in `producers` unique while the trace lives

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func == _DEVICE_GETTER:
            device = func(*args, **kwargs)
            self._tensor_devices[id(device)] = device
            return device
        name = op_name(func)
        if name in NOT_OPS:
            return func(*args, **kwargs)
        rec = OpRecord(name, summarize(args, self.values), summarize(kwargs, self.values), self.locate())
        if name in FACTORIES:
            device = kwargs.get("device")
            rec.device_fixed = self._tensor_devices.get(id(device)) is not device or device is None
        self.records.append(rec)
        if name in ACTIVATIONS and self.values:
            rec.stats = relu_stats(name, args)
        out = func(*args, **kwargs)
        self.note_devices(out)
        rec.out = summarize(out, self.values)
        if name in ACTIVATIONS and self.values:
            rec.stats.update(activation_stats(name, out))
        if isinstance(out, torch.Tensor) and self.values:
            self.producers[id(out)] = rec
            self._alive.append(out)
        return out


    def note_devices(self, value) -> None:
        """FakeTensor.device is a Python property that bypasses __torch_function__; it returns the
        tensor's `fake_device` object itself, so those objects count as devices read off tensors."""
        for leaf in tree_flatten(value)[0]:
            device = getattr(leaf, "fake_device", None) if isinstance(leaf, torch.Tensor) else None
            if device is not None:
                self._tensor_devices[id(device)] = device


class EagerTrace:
    def __init__(self, records: list[OpRecord], output: Any, producers: dict[int, OpRecord]):
        self.records = records
        self.output = output
        self._producers = producers

    def producer(self, tensor: Any) -> OpRecord | None:
        return self._producers.get(id(tensor))


def trace(model: torch.nn.Module, args: tuple, kwargs: dict, locate: Locator, *, values: bool) -> EagerTrace:
    """Run model(*args, **kwargs) once, recording ops. Raises ForwardFailed if forward raises."""
    recorder = _Recorder(locate, values)
    if not values:  # fake tensors: `device=x.device` may name an input's or a parameter's device
        recorder.note_devices((args, kwargs, list(model.parameters()), list(model.buffers())))
    try:
        with torch.no_grad(), recorder:
            output = model(*args, **kwargs)
    except Exception as exc:
        raise ForwardFailed(exc, recorder.records) from exc
    return EagerTrace(recorder.records, output, recorder.producers)
