"""Checking one model in the worker: build it, find an input its forward accepts, run the analyzer.

Imported only in the worker, after its memory cap is set. Every call into checked code runs under
`failures.checked_code()`.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import itertools
import os
import time
from collections.abc import Callable
from contextlib import suppress

import torch
import torch.nn as nn

from nnlint.trace import missing, nested
from nnlint.trace.building import define_missing_global
from nnlint.trace.construction import _value_for, construction_candidates, image_hints, sequence_hints
from nnlint.trace.failures import CheckedCodeFailed, checked_code
from nnlint.trace.input_search import (
    COMMENT,
    FIXED,
    FLAT,
    SPATIAL,
    input_candidates,
    make_tensors,
    param_dims,
    parse_list,
    sizes_for,
    spec_numbers,
)
from nnlint.trace.inputs import GUESSED, InputSpec, SpecError, TensorSpec, resized
from nnlint.trace.usage import width_hints

ANALYZER = "nnlint.trace.analyze:analyze_model"


class ModelFailure(Exception):
    """No candidate could be checked: the reasons, the best-guess (text, spec) or None, and for
    NNL790 its category in a few words, the missing package blocking it, a one-line summary."""

    def __init__(self, reason: str, best_guess=None, category: str = "tracing", blocked=None, summary=None):
        super().__init__(reason, best_guess)
        self.reason, self.best_guess, self.category, self.blocked = reason, best_guess, category, blocked
        self.summary = summary or reason


TRACED: list = []  # nested.Traced of the current file's models that traced, for the classes inside them
_INPUT_ERRORS: list[BaseException] = []  # import errors raised by forward passes of the current model
TRUSTED_SOURCES = ("config", "inline comment", "literal example input in the file")


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


def _patient(build, namespace: dict, request: dict):
    """`build` that defines module globals the slice left out (see define_missing_global) and casts
    the model to the dtype its call sites use (`.double()`)."""
    dtype = getattr(torch, request["dtype"]) if request.get("dtype") else None

    def run():
        for _ in range(8):
            try:
                model = build()
                break
            except NameError as exc:
                if not define_missing_global(exc, namespace, request.get("argparse_defaults", {}),
                                             lambda name: _value_for(name, None, 1)):
                    raise
        else:
            model = build()
        if dtype is not None and isinstance(model, nn.Module):
            model = model.to(dtype)
        return model

    return run


def _eval(model) -> None:
    for module in model.modules():  # not model.eval(): some modules override train() itself
        module.training = False


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
            _eval(model)
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
            if isinstance(failure.original, ImportError):
                _INPUT_ERRORS.append(failure.original)
            if failed is not None and not failed and args is not None:
                failed.append((source, spec, sizes, args, kwargs))
            continue
        return source, spec, sizes, args, kwargs
    return None


def _traced(cls, how, build, model, found, params, request, options, path, fake, started) -> dict:
    """Analyze a model whose input was found; guessed-input findings are confirmed on a rebuilt copy."""
    confirm = functools.partial(_confirmed, model=model, rebuild=lambda: _meta_build(build),
                                request=request, options=options, path=path, fake=fake)
    result = _analyzed(model, how, found, params, path, fake, started,
                       lambda result, found: confirm(result, found=found))
    if request.get("unbatched"):
        _drop_batch_findings(result, "the code calls the model on one sample")
    elif FLAT in found[2]:
        _drop_batch_findings(result, "the input is one flat list of ids, not a batch")
    if not _rank_known(found[0], request):
        _unranked(result)
    TRACED.append(nested.Traced(cls.__name__, build, found[1], found[2], fake, found[0] in TRUSTED_SOURCES))
    return result


def _drop_batch_findings(result: dict, why: str) -> None:
    """The input's rows are not samples (`model(x[0])`, the flat ids of an EmbeddingBag)."""
    from nnlint.trace.analyze import BATCH_CODES

    kept = [f for f in result.get("findings", []) if f["code"] not in BATCH_CODES]
    if len(kept) < len(result.get("findings", [])):
        result["notes"] = list(result.get("notes", [])) + [
            f"{len(result['findings']) - len(kept)} batch finding(s) dropped: {why}"]
    result["findings"] = kept


def _rank_known(source: str, request: dict) -> bool:
    """Whether the traced input has the rank the code's own inputs have (its sizes may be chosen): it is
    declared (config, comment), or it is the file's example input and every example has one rank."""
    if request.get("unbatched"):  # `model(x[0])` somewhere: a rank lower than the batch's
        return False
    if source not in TRUSTED_SOURCES:
        return False
    if source != "literal example input in the file":
        return True
    try:
        ranks = {tuple(len(t.dims) for t in parse_list(specs).all_specs()) for specs in request["literal_inputs"]}
    except SpecError:
        return False
    return len(ranks) == 1


def _unranked(result: dict) -> dict:
    """The softmax calls seen on a guessed input: seen, but the rank the code gives them is unknown."""
    result["implicit_dims"] = [[*row[:4], None] for row in result.get("implicit_dims", [])]
    return result


def check_model(cls, namespace, request, options, path, warm_meta: MetaWarmup) -> dict:
    """Build the model and find its input (constructor candidates x input candidates), then analyze.

    A model is built for real once, its inputs tried on it (see `budget`); one too big for that is
    built on the meta device instead, where a failing forward costs nothing whatever the model's
    size, and only the winner is built for real (unless it is big enough for the fake-tensor path).
    """
    started = time.perf_counter()
    missing.reset()
    _INPUT_ERRORS.clear()
    attempts: list[tuple[str, object]] = []
    errors: list[BaseException] = []  # of every attempt, for the failure's category
    built = False
    raised = None  # (how, model, params, failed input) of the first real build no input ran on
    for how, build, arguments in construction_candidates(cls, namespace, request):
        build = _patient(build, namespace, request)
        request = {**request, "sequence_hints": sequence_hints(arguments), "image_hints": image_hints(arguments),
                   "width_hints": width_hints(arguments)}
        try:
            built_once = _build_once(build, options)  # small models: their only construction
        except CheckedCodeFailed as failure:
            attempts.append((f"{how}: {failure}", None))
            errors.append(failure.original)
            continue
        if built_once is not None:
            built = True
            model, params = built_once
            raising: list = []
            found = _find_input(model, request, options, "cpu", attempts, how, raising)
            if found is None:
                if raising and raised is None:
                    raised = (how, model, params, raising[0])
                continue
            return _traced(cls, how, build, model, found, params, request, options, path, False, started)
        warm_meta()  # small models never get here: the meta device's first use costs seconds
        try:
            meta_model = _meta_build(build)
        except CheckedCodeFailed as failure:
            attempts.append((f"{how}: {failure}", None))
            errors.append(failure.original)
            continue
        built = built or meta_model is not None
        params = sum(p.numel() for p in meta_model.parameters()) if meta_model is not None else None
        fake = bool(options.get("fake")) or (params or 0) > options.get("fake_threshold", 50_000_000)
        found = None
        if meta_model is not None:
            _eval(meta_model)
            found = _find_input(meta_model, request, options, "meta", attempts, how)
            if found is None and fake:
                continue
        elif fake:
            attempts.append((f"{how}: cannot be built on the meta device for the fake-tensor path", None))
            continue
        if fake:
            model = meta_model
        else:
            try:
                with checked_code():
                    model = _real_build(build)
                    _eval(model)
            except CheckedCodeFailed as failure:
                attempts.append((f"{how}: {failure}", None))
                errors.append(failure.original)
                continue
            built = True
            params = sum(p.numel() for p in model.parameters())
            if found is not None:  # the meta run chose the input: the same tensors, for real
                try:  # meta kernels check less than CPU ones (softmax over a missing dim)
                    with checked_code():
                        found = (*found[:3], *make_tensors(found[1], found[2], model, "cpu"))
                        _forward(model, found[3], found[4])
                except CheckedCodeFailed:
                    found = None
            if found is None:  # no meta build, or ops without meta kernels: try the inputs for real
                failed: list = []
                found = _find_input(model, request, options, "cpu", attempts, how, failed)
                if found is None:
                    if failed and raised is None:
                        raised = (how, model, params, failed[0])
                    continue
        return _traced(cls, how, build, model, found, params, request, options, path, fake, started)
    if raised is not None and not missing.touched:  # a missing package is no hazard
        # No candidate ran, but a forward that raises can be the hazard itself (cross_entropy
        # given a (B, 1) target): the analyzer reports that as a finding, else it raises.
        how, model, params, found = raised
        with suppress(ModelFailure):
            return _unranked(_analyzed(model, how, found, params, path, False, started))
    best_guess = next(((text, spec) for text, spec in attempts if spec is not None), None)
    reasons = [text for text, _ in attempts[-4:]]
    if not attempts:
        reasons = ["built, but no input shape could be inferred"]
    blocked = next(iter(missing.touched.items()), None) or next(
        filter(None, map(missing.blocking, errors + _INPUT_ERRORS)), None)
    category = ("missing package" if blocked else "memory" if any("memory" in r for r in reasons)
                else "input" if built else "constructor arguments")
    last = reasons[-1]
    # The last attempt's error first (the message is one short line); how it was built after it.
    how, sep, error = last.rpartition("): ") if "): " in last else last.rpartition(": ")
    summary = f"{error} (last of {len(attempts)} attempts: {how}{')' if sep == '): ' else ''})" if sep else last
    raise ModelFailure("; ".join(reasons), best_guess, category, blocked, summary)


def _concrete(spec: InputSpec, sizes: dict) -> InputSpec:
    return InputSpec(tuple(TensorSpec(t.dtype, t.shape(sizes)) for t in spec.args),
                     tuple((k, TensorSpec(t.dtype, t.shape(sizes))) for k, t in spec.kwargs))


def _second_inputs(model, request, options, found):
    """(spec, sizes) of second inputs to confirm a finding made on a guessed input: the same spec
    sized independently, then the other candidates of the same ranks."""
    source, spec, sizes = found[:3]
    free = {s for t in spec.all_specs() for s in t.symbols()} - set(sizes.get(FIXED, ()))
    dims = param_dims(model) | spec_numbers(spec)
    yield spec, resized(sizes, free, dims, spatial=SPATIAL)
    ranks = [len(t.dims) for t in spec.all_specs()]
    for _, other, other_fixed in input_candidates(model, request):
        if [len(t.dims) for t in other.all_specs()] != ranks:
            continue
        other_sizes = sizes_for(other, other_fixed, dims, options.get("batch_size"))
        if _concrete(other, other_sizes) != _concrete(spec, sizes):
            yield other, other_sizes
    if source.startswith("first layer") and GUESSED in sizes:
        # No other image size runs: the head demands this one (an MNIST net's 28 x 28), so it is
        # the model's own; only the free sizes (the batch) can change.
        yield spec, resized({k: v for k, v in sizes.items() if k != GUESSED}, free, dims, spatial=SPATIAL)


def _confirmed(result, model, rebuild, request, options, found, path, fake) -> dict:
    """Keep the findings of a guessed input only where a second, independently sized input of the
    same rank shows them too (same code, same line)."""
    if not result.get("findings") or found[0] in TRUSTED_SOURCES:
        return result
    device = "meta" if fake else "cpu"
    for spec, sizes in itertools.islice(_second_inputs(model, request, options, found), 12):
        target = rebuild() if fake else model
        if target is None:
            break
        try:
            with checked_code():
                args, kwargs = make_tensors(spec, sizes, target, device)
                _forward(target, args, kwargs, device)
            again = _analyze(target, args, kwargs, path, fake, any(t.is_int for t in spec.all_specs()),
                             _batch_axis(found[0], spec))
        except (CheckedCodeFailed, ModelFailure):  # this second input does not run: try another
            continue
        seen = {(f["code"], f["line"]) for f in again.get("findings", [])}
        kept = [f for f in result["findings"] if (f["code"], f["line"]) in seen]
        result["notes"] = list(result.get("notes", [])) + [
            f"{len(kept)} of {len(result['findings'])} finding(s) on the guessed input confirmed on a second "
            f"input {_concrete(spec, sizes).config_value()}"]
        result["findings"] = kept
        return result
    result["notes"] = list(result.get("notes", [])) + [
        f"{len(result['findings'])} finding(s) on the guessed input dropped: no second input of the same rank runs"]
    result["findings"] = []
    return result


def _batch_axis(source: str, spec: InputSpec) -> int | None:
    """Where the code itself puts the batch (its `B`), for inputs it declared; None: infer it."""
    if source not in TRUSTED_SOURCES + (COMMENT,) or not spec.all_specs():
        return None
    dims = spec.all_specs()[0].dims
    return dims.index("B") if "B" in dims else None


def _analyzed(model, how, found, params, path, fake, started, confirm=None) -> dict:
    source, spec, sizes, args, kwargs = found
    concrete = _concrete(spec, sizes)
    result = _analyze(model, args, kwargs, path, fake, any(t.is_int for t in spec.all_specs()),
                      _batch_axis(source, spec))
    if confirm is not None:
        result = confirm(result, found)
    result.update({
        "ok": True, "built": how, "input": spec.config_value(), "input_source": source,
        "shapes": concrete.config_value(), "params": params,
        "seconds": time.perf_counter() - started,
    })
    return result


def _analyze(model, args, kwargs, path, fake, int_inputs, batch_axis=None) -> dict:
    module_name, _, function_name = os.environ.get("NNLINT_TRACE_ANALYZER", ANALYZER).partition(":")
    try:
        analyze = getattr(importlib.import_module(module_name), function_name)
    except ImportError as exc:
        return {"path": "none", "why": f"analyzer unavailable: {exc}", "findings": [], "notes": []}
    try:
        with checked_code():
            hints = {} if batch_axis is None else {"batch_axis": batch_axis}
            result = analyze(model, tuple(args), dict(kwargs), path, fake=fake, int_inputs=int_inputs, **hints)
    except CheckedCodeFailed as failure:
        raise ModelFailure(f"tracing failed: {failure}", None) from failure.original
    return dict(result)


def check_inside(deferred: dict, path: str, send) -> None:
    """Classes that failed alone ({class: their failure message}), analyzed as the instance a traced
    model of the file builds, on the inputs it passes (see nested.py)."""
    def rebuild(parent):
        try:
            with checked_code():
                model = _meta_build(parent.build) if parent.fake else _real_build(parent.build)
        except CheckedCodeFailed:
            return None
        if model is not None:
            _eval(model)
        return model

    captured = nested.capture(set(deferred), list(TRACED), rebuild, make_tensors, _forward)
    for cls, message in deferred.items():
        hit = captured.get(cls)
        if hit is None:
            send(message)
            continue
        started = time.perf_counter()
        tensors = [t for t in list(hit.args) + list(hit.kwargs.values()) if isinstance(t, torch.Tensor)]
        try:
            result = _analyze(hit.module, hit.args, hit.kwargs, path, hit.parent.fake,
                              any(not t.is_floating_point() and not t.is_complex() for t in tensors))
        except ModelFailure:
            send(message)
            continue
        if not hit.parent.trusted:  # a guessed input: the parent's own (confirmed) analysis covers it
            result["findings"] = []
        result["implicit_dims"] = []  # the parent's own analysis saw these calls, on the parent's input
        shapes = ", ".join(f"{str(t.dtype).removeprefix('torch.')}[{','.join(map(str, t.shape))}]" for t in tensors)
        result.update({"ok": True, "built": f"inside {hit.parent.name}, as the code builds it",
                       "input": f'"{shapes}"', "input_source": f"the inputs {hit.parent.name} passes",
                       "shapes": f'"{shapes}"', "params": sum(p.numel() for p in hit.module.parameters()),
                       "seconds": time.perf_counter() - started})
        send({"model": cls.__name__, **result})


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
