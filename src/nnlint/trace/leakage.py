"""NNL704 and NNL712 by gradients: which inputs each output position depends on, and where that starts.

NNL704: in eval mode output sample i may depend only on input sample i. Every sample is tested
against every other (one backward pass per sample: B is a small prime), so one-directional mixing
(an RNN that lost `batch_first=True` lets sample t see samples before it, not after) is caught.

NNL712: in a model meant to be causal, the output at position t may depend only on positions <= t.

Only the first input is the sample (parameters, masks and index tensors passed to forward are not
samples); for token inputs the first embedding's output stands for it. A leak is then located: the
forward pass is replayed under a TorchFunctionMode that keeps every op's live output, and the first
op whose output already leaks is reported, with its name and shapes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten

from nnlint.trace.checks import NOT_OPS, Loc, Locator, finding, op_name

MAX_LOCATED_OPS = 400
_MASKING_OPS = frozenset({"masked_fill", "masked_fill_", "where"})
_TRIANGLES = frozenset({"tril", "triu", "tril_", "triu_", "generate_square_subsequent_mask"})
_TINY = 1e-6


@dataclass
class _Live:
    op: str
    loc: Loc | None
    inputs: list[tuple[int, ...]]
    out: torch.Tensor


class _Keeper(TorchFunctionMode):
    """Keeps the live, differentiable outputs of the ops called from the checked file."""

    def __init__(self, locate: Locator):
        super().__init__()
        self.locate = locate
        self.ops: list[_Live] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = op_name(func)
        result = func(*args, **kwargs)
        if name in NOT_OPS or len(self.ops) >= MAX_LOCATED_OPS:
            return result
        out = result[0] if isinstance(result, (tuple, list)) and result else result  # (attn_output, weights)
        if isinstance(out, torch.Tensor) and out.requires_grad and out.is_floating_point():
            loc = self.locate()
            if loc is not None:
                shapes = [tuple(t.shape) for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor)]
                self.ops.append(_Live(name, loc, shapes, out))
        return result


class Probe:
    """One differentiable forward pass with the sample input (or its embedding) watched."""

    def __init__(self, model, args, kwargs, locate: Locator | None = None):
        self.watched: torch.Tensor | None = None
        args, kwargs = list(args), dict(kwargs)
        first = next((i for i, a in enumerate(args) if isinstance(a, torch.Tensor)), None)
        hooks = []
        if first is not None and args[first].is_floating_point():
            args[first] = self.watched = args[first].detach().clone().requires_grad_(True)
        elif first is not None:  # token ids: the first embedding output stands for the input
            tokens = args[first]

            def capture(module, inputs, output):
                if (self.watched is None and inputs and inputs[0] is tokens and isinstance(output, torch.Tensor)
                        and output.requires_grad):
                    output.retain_grad()
                    self.watched = output

            hooks = [m.register_forward_hook(capture) for m in model.modules()
                     if isinstance(m, (torch.nn.Embedding, torch.nn.EmbeddingBag))]
        keeper = _Keeper(locate) if locate is not None else None
        try:
            with torch.enable_grad():
                if keeper is not None:
                    with keeper:
                        output = model(*args, **kwargs)
                else:
                    output = model(*args, **kwargs)
        finally:
            for hook in hooks:
                hook.remove()
        self.ops = keeper.ops if keeper is not None else []
        self.outputs = [t for t in tree_flatten(output)[0]
                        if isinstance(t, torch.Tensor) and t.is_floating_point() and t.requires_grad]

    def dependence(self, scalar: torch.Tensor, axis: int) -> torch.Tensor | None:
        """|d scalar / d watched|, maximized over every axis but `axis`: one value per position."""
        assert self.watched is not None, "callers check that something is watched"
        (grad,) = torch.autograd.grad(scalar, self.watched, retain_graph=True, allow_unused=True)
        if grad is None:
            return None
        grad = grad.detach().abs().double()
        dims = [d for d in range(grad.dim()) if d != axis]
        return grad.amax(dim=dims) if dims else grad


def _axis_of(t: torch.Tensor, size: int, preferred: int) -> int | None:
    if t.dim() > preferred and t.shape[preferred] == size:
        return preferred
    return next((i for i, s in enumerate(t.shape) if s == size), None)


def _mixes(dep: torch.Tensor | None, allowed) -> tuple[float, float]:
    """(largest dependence outside `allowed` positions, largest overall)."""
    if dep is None:
        return 0.0, 0.0
    outside = dep.clone()
    outside[allowed] = 0
    return float(outside.max()), float(dep.max())


def _leaks(outside: float, overall: float) -> bool:
    return overall > 0 and outside > _TINY * overall


def _shapes(live: _Live) -> str:
    source = next((s for s in live.inputs if s), None)
    fmt = lambda s: "(" + ", ".join(map(str, s)) + ")"  # noqa: E731
    return f"{fmt(source)} -> {fmt(tuple(live.out.shape))}" if source else fmt(tuple(live.out.shape))


def _first_leaking_op(probe: Probe, size: int, axis: int, allowed_for) -> _Live | None:
    """The first kept op whose output already leaks: position p of its output (along the axis of
    length `size`) depends on watched positions outside `allowed_for(p)`."""
    masked = False  # a (T, T) score matrix that did not leak was seen: the mask had been applied
    for live in probe.ops:
        if list(live.out.shape).count(size) >= 2:
            # Scores see every position by design until masked: such a matrix is the culprit only
            # when it leaks after a masked one (softmax over the query axis).
            out_axis = _axis_of(live.out, size, axis)
            if out_axis is None:
                continue
            try:
                leaks = any(_leaks(*_mixes(probe.dependence(live.out.select(out_axis, p).sum(), axis),
                                           allowed_for(p))) for p in range(size))
            except RuntimeError:
                continue
            if leaks and (masked or live.op in _MASKING_OPS):  # a mask applied the wrong way round
                return live
            masked = masked or not leaks
            continue
        out_axis = _axis_of(live.out, size, axis)
        try:
            if out_axis is None:  # the axis was merged away: does one element see several positions?
                flat = live.out.reshape(-1)
                for index in (0, flat.numel() - 1):
                    dep = probe.dependence(flat[index], axis)
                    if dep is not None and int((dep > _TINY * float(dep.max() or 1)).sum()) > 1:
                        return live
                continue
            for position in range(size):
                dep = probe.dependence(live.out.select(out_axis, position).sum(), axis)
                if _leaks(*_mixes(dep, allowed_for(position))):
                    return live
        except RuntimeError:  # an op the watched input does not reach
            continue
    return None


def sample_findings(model, args, kwargs, batch_axis: int, fallback: Loc, locate: Locator | None,
                    notes: list[str]) -> list[dict]:
    """NNL704: every sample's output against every other sample's input."""
    probe = Probe(model, args, kwargs)
    if probe.watched is None:
        notes.append("NNL704 skipped: no float input or embedding output to differentiate")
        return []
    axis = batch_axis if probe.watched.dim() > batch_axis else 0
    batch = probe.watched.shape[axis]
    outputs = [(t, a) for t in probe.outputs if (a := _axis_of(t, batch, batch_axis)) is not None]
    if batch < 2 or not outputs:
        notes.append("NNL704 skipped: no output has the batch dimension")
        return []
    for sample in range(batch):
        total = torch.stack([t.select(a, sample).sum().float() for t, a in outputs]).sum()
        outside, overall = _mixes(probe.dependence(total, axis), [sample])
        if _leaks(outside, overall):
            located = _first_leaking_op(Probe(model, args, kwargs, locate), batch, axis, lambda p: [p])
            where = f"at {located.op} {_shapes(located)}" if located else "in forward"
            return [finding("NNL704", f"samples mix {where}: in eval mode output sample {sample} depends on other "
                            "samples' inputs; reorder dims with permute/transpose, not view, and never "
                            "reduce over the batch", located.loc if located and located.loc else fallback)]
    return []


CAUSAL_NAMES = ("causal", "gpt", "autoregressive")


def causal_intent(model, records) -> str | None:
    """Why the model is meant to be causal, or None: a triangular mask buffer or one built in forward
    (`tril`/`triu`), attention called with `is_causal=True`, a causal name or flag."""
    # Buffers, and masks cached as plain attributes (`self.src_mask = mask` in forward).
    tensors = list(model.named_buffers()) + [
        (f"{prefix}.{key}".lstrip("."), value) for prefix, module in model.named_modules()
        for key, value in vars(module).items() if isinstance(value, torch.Tensor) and not key.startswith("_")]
    for name, buffer in tensors:
        if buffer is not None and buffer.dim() >= 2 and buffer.shape[-1] == buffer.shape[-2] >= 2 \
                and buffer.device.type != "meta":
            square = buffer.reshape(-1, buffer.shape[-2], buffer.shape[-1])[0]
            if (square != 0).any() and not torch.equal(square, torch.diag(torch.diagonal(square))) and (
                    torch.equal(square, square.tril()) or torch.equal(square, square.triu())):
                return f"mask buffer {name}"
    for rec in records:
        if rec.op == "scaled_dot_product_attention" and rec.kwargs.get("is_causal") is True:
            return "is_causal=True"
        if rec.op in _TRIANGLES:
            return f"a {rec.op} mask built in forward"
    for module in model.modules():
        if any(word in type(module).__name__.lower() for word in CAUSAL_NAMES):
            return f"name {type(module).__name__}"
        for flag in ("causal", "is_causal"):
            if getattr(module, flag, None) is True:
                return f"{flag}=True"
    return None


def future_findings(model, args, kwargs, batch_axis: int, fallback: Loc, locate: Locator | None, intent: str,
                    notes: list[str]) -> list[dict]:
    """NNL712: the output at position t must not depend on input positions after t."""
    probe = Probe(model, args, kwargs)
    if probe.watched is None or probe.watched.dim() < 2:
        notes.append("NNL712 skipped: no sequence input to differentiate")
        return []
    time_axis = 1 if batch_axis == 0 else 0
    length = probe.watched.shape[time_axis]
    batch = probe.watched.shape[batch_axis]
    outputs = [(t, a) for t in probe.outputs if (a := _axis_of(t, length, time_axis)) is not None]
    if length < 3 or length == batch or not outputs:
        notes.append("NNL712 skipped: no output has the sequence dimension")
        return []
    for position in range(length - 1):
        total = torch.stack([t.select(a, position).sum().float() for t, a in outputs]).sum()
        outside, overall = _mixes(probe.dependence(total, time_axis), slice(0, position + 1))
        if _leaks(outside, overall):
            located = _first_leaking_op(Probe(model, args, kwargs, locate), length, time_axis,
                                        lambda p: slice(0, p + 1))
            where = f"at {located.op}" if located else "in forward"
            return [finding("NNL712", f"output position {position} sees later positions {where}, though the "
                            f"model is causal ({intent}): mask scores above the diagonal, softmax over keys",
                            located.loc if located and located.loc else fallback)]
    return []
