"""Checking one model in the worker: build it, find an input its forward accepts, run the analyzer.

Imported only in the worker, after its memory cap is set. Every call into checked code runs under
`failures.checked_code()`.
"""

from __future__ import annotations

import importlib
import inspect
import os
import time
from collections.abc import Callable
from contextlib import suppress

import torch
import torch.nn as nn

from nnlint.trace.construction import construction_candidates, image_hints, sequence_hints
from nnlint.trace.failures import CheckedCodeFailed, checked_code
from nnlint.trace.input_search import input_candidates, make_tensors, param_dims, sizes_for
from nnlint.trace.inputs import InputSpec, TensorSpec

ANALYZER = "nnlint.trace.analyze:analyze_model"


class ModelFailure(Exception):
    """No candidate could be checked: args are (the reasons, the best-guess (text, spec) or None)."""


class MetaWarmup:
    """The first meta/fake op loads torch's meta registrations (seconds): a one-time cost of the
    worker, not of the file being checked, so the parent is told to extend that file's deadline."""

    def __init__(self, report_grace: Callable[[float], None] | None = None):
        self.report_grace = report_grace
        self.done = False

    def __call__(self) -> None:
        if self.done:
            return
        self.done = True
        started = time.monotonic()
        warm_analyzer(fake=True)
        if self.report_grace is not None:
            self.report_grace(time.monotonic() - started)


def warm_analyzer(fake: bool) -> None:
    """Run the analyzer once on a tiny model: its first call imports and initializes much of torch
    (fx, autograd, fake tensors), which must not count against the first checked file's timeout."""
    device = "meta" if fake else "cpu"
    with suppress(CheckedCodeFailed), checked_code():  # warming up is best effort
        with torch.device(device):
            tiny = nn.Sequential(nn.Linear(3, 2))
        _analyze(tiny, (torch.randn(2, 3, device=device) if not fake else torch.empty(2, 3, device="meta"),),
                 {}, __file__, fake, False)


def _forward(model, args, kwargs, device="cpu"):
    # On the meta device, factories in forward (`torch.ones(T, T)`) must make meta tensors too,
    # or the input search fails where the real or fake run would not.
    with torch.no_grad(), torch.device(device):
        model(*args, **kwargs)


def _meta_build(build):
    """The model on the meta device (no memory, no init compute), or None when that fails
    (`.item()` in a constructor, say). A SystemExit is not retried for real: it propagates."""
    try:
        with checked_code(), torch.device("meta"):
            model = build()
    except CheckedCodeFailed as failure:
        if isinstance(failure.original, SystemExit):
            raise
        return None
    return model if isinstance(model, nn.Module) else None


def _build_once(build, options):
    """(model, parameters) built for real within the fake-tensor threshold, or None when it is too big
    (or --fake) and the meta path takes over. Raises CheckedCodeFailed when the constructor does."""
    from nnlint.trace.budget import TooBig, build_within

    if options.get("fake"):
        return None
    try:
        with checked_code():
            model = build_within(build, options.get("fake_threshold", 50_000_000))
            if not isinstance(model, nn.Module):
                raise TypeError(f"built a {type(model).__name__}, not a module")
            model.eval()  # not chained: some modules override train() without returning self
    except CheckedCodeFailed as failure:
        if isinstance(failure.original, TooBig):
            return None
        raise
    return model, sum(p.numel() for p in model.parameters())


def _real_build(build):
    torch.manual_seed(0)
    model = build()
    if not isinstance(model, nn.Module):
        raise TypeError(f"built a {type(model).__name__}, not a module")
    return model


def _find_input(model, request, options, device, attempts, how, failed=None):
    """The first input candidate whose forward pass runs: (source, spec, sizes, args, kwargs).

    `failed`, a list, receives the first candidate whose tensors were made but whose forward raised.
    """
    dims = param_dims(model)
    for source, spec, fixed in input_candidates(model, request):
        sizes = sizes_for(spec, fixed, dims, options.get("batch_size"))
        args = None
        try:
            with checked_code():
                args, kwargs = make_tensors(spec, sizes, model, device)
                _forward(model, args, kwargs, device)
        except CheckedCodeFailed as failure:
            attempts.append((f"{how}, input {spec.config_value()} ({source}): {failure}", spec))
            if failed is not None and not failed and args is not None:
                failed.append((source, spec, sizes, args, kwargs))
            continue
        return source, spec, sizes, args, kwargs
    return None


def check_model(cls, namespace, request, options, path, warm_meta: MetaWarmup) -> dict:
    """Build the model and find its input (constructor candidates x input candidates), then analyze.

    A model is built for real once, its inputs tried on it (see `budget`); one too big for that is
    built on the meta device instead, where a failing forward costs nothing whatever the model's
    size, and only the winner is built for real (unless it is big enough for the fake-tensor path).
    """
    started = time.perf_counter()
    attempts: list[tuple[str, object]] = []
    raised = None  # (how, model, params, failed input) of the first real build no input ran on
    for how, build, arguments in construction_candidates(cls, namespace, request):
        request = {**request, "sequence_hints": sequence_hints(arguments), "image_hints": image_hints(arguments)}
        try:
            built_once = _build_once(build, options)  # small models: their only construction
        except CheckedCodeFailed as failure:
            attempts.append((f"{how}: {failure}", None))
            continue
        if built_once is not None:
            model, params = built_once
            raising: list = []
            found = _find_input(model, request, options, "cpu", attempts, how, raising)
            if found is None:
                if raising and raised is None:
                    raised = (how, model, params, raising[0])
                continue
            return _analyzed(model, how, found, params, path, False, started)
        try:
            meta_model = _meta_build(build)
        except CheckedCodeFailed as failure:
            attempts.append((f"{how}: {failure}", None))
            continue
        params = sum(p.numel() for p in meta_model.parameters()) if meta_model is not None else None
        fake = bool(options.get("fake")) or (params or 0) > options.get("fake_threshold", 50_000_000)
        found = None
        if meta_model is not None:
            meta_model.eval()
            found = _find_input(meta_model, request, options, "meta", attempts, how)
            if found is None and fake:
                continue
        elif fake:
            attempts.append((f"{how}: cannot be built on the meta device for the fake-tensor path", None))
            continue
        if fake:
            warm_meta()
            model = meta_model
        else:
            try:
                with checked_code():
                    model = _real_build(build)
                    model.eval()  # not chained: some modules override train() without returning self
            except CheckedCodeFailed as failure:
                attempts.append((f"{how}: {failure}", None))
                continue
            params = sum(p.numel() for p in model.parameters())
            if found is not None:  # the meta run chose the input: the same tensors, for real
                found = (*found[:3], *make_tensors(found[1], found[2], model, "cpu"))
            else:  # no meta build, or ops without meta kernels: try the inputs for real
                failed: list = []
                found = _find_input(model, request, options, "cpu", attempts, how, failed)
                if found is None:
                    if failed and raised is None:
                        raised = (how, model, params, failed[0])
                    continue
        return _analyzed(model, how, found, params, path, fake, started)
    if raised is not None:
        # No candidate ran, but a forward that raises can be the hazard itself (cross_entropy
        # given a (B, 1) target): the analyzer reports that as a finding, else it raises.
        how, model, params, found = raised
        with suppress(ModelFailure):
            return _analyzed(model, how, found, params, path, False, started)
    best_guess = next(((text, spec) for text, spec in attempts if spec is not None), None)
    reasons = [text for text, _ in attempts[-4:]]
    if not attempts:
        reasons = ["built, but no input shape could be inferred"]
    raise ModelFailure("; ".join(reasons), best_guess)


def _analyzed(model, how, found, params, path, fake, started) -> dict:
    source, spec, sizes, args, kwargs = found
    concrete = InputSpec(tuple(TensorSpec(t.dtype, t.shape(sizes)) for t in spec.args),
                         tuple((k, TensorSpec(t.dtype, t.shape(sizes))) for k, t in spec.kwargs))
    result = _analyze(model, args, kwargs, path, fake, any(t.is_int for t in spec.all_specs()))
    result.update({
        "ok": True, "built": how, "input": spec.config_value(), "input_source": source,
        "shapes": concrete.config_value(), "params": params,
        "seconds": time.perf_counter() - started,
    })
    return result


def _analyze(model, args, kwargs, path, fake, int_inputs) -> dict:
    module_name, _, function_name = os.environ.get("NNLINT_TRACE_ANALYZER", ANALYZER).partition(":")
    try:
        analyze = getattr(importlib.import_module(module_name), function_name)
    except ImportError as exc:
        return {"path": "none", "why": f"analyzer unavailable: {exc}", "findings": [], "notes": []}
    try:
        with checked_code():
            result = analyze(model, tuple(args), dict(kwargs), path, fake=fake, int_inputs=int_inputs)
    except CheckedCodeFailed as failure:
        raise ModelFailure(f"tracing failed: {failure}", None) from failure.original
    return dict(result)


def config_snippet(name: str, cls, best_guess) -> str:
    """The pyproject.toml table that would tell nnlint how to build and feed this model."""
    lines = [f'[tool.nnlint.models."{name}"]']
    required = []
    if cls is not None:
        try:
            required = [p.name for p in inspect.signature(cls).parameters.values()
                        if p.default is inspect.Parameter.empty
                        and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
        except (TypeError, ValueError):
            required = []
    if required:
        lines.append("kwargs = { " + ", ".join(f"{p} = 0" for p in required) + " }  # the real values")
    spec = best_guess[1] if best_guess else None
    lines.append(f"input = {spec.config_value()}" if spec else 'input = "float32[B,...]"  # the shape forward expects')
    return "\n".join(lines)
