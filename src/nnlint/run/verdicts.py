"""What the recorded steps say, once the run has stopped: NNL802-NNL805, NNL808, NNL810, NNL811.

Findings that are certain when they happen are made by the probes themselves; these need several
batches or steps. Thresholds favour precision: each fires only on a pattern a working setup does not show.
"""

from __future__ import annotations

import math
import statistics

import torch

from nnlint.run.probes import Probes, Root

IMAGE_MAX = 255.5
FEATURE_SCALE_RATIO = 100.0
MIN_STEPS = 5  # for anything judged on the curve


def conclude(probes: Probes) -> None:
    trained = _trained_roots(probes)
    for root in trained:
        _inputs(probes, root)
    _labels(probes)
    _initial_loss(probes)
    _gradients(probes, trained)
    _loss_curve(probes)
    _data_loading(probes)


def _trained_roots(probes: Probes) -> list[Root]:
    if probes.manual:
        return [r for r in probes.roots.values() if r.module is not None]
    optimized = {id(p) for opt in probes.optimizers for g in opt.param_groups for p in g["params"]}
    return [r for r in probes.roots.values() if r.module is not None and optimized & set(r.names)]


# -- NNL802, NNL803 ------------------------------------------------------------------------------


def _inputs(probes: Probes, root: Root) -> None:
    if not root.inputs:
        return
    shapes = {tuple(x.shape[1:]) for x in root.inputs}
    x = torch.cat(root.inputs) if len(shapes) == 1 else root.inputs[0]
    finite = x[torch.isfinite(x)]
    if finite.numel() < 16:
        return
    low, high = float(finite.min()), float(finite.max())
    integral = bool((finite == finite.round()).all())
    where = root.called
    if x.dim() >= 3 and low >= 0 and 25 < high <= IMAGE_MAX and (integral or high > 100):
        probes.find("NNL802", f"the model's input ranges over [{low:g}, {high:g}]: raw 0-255 pixel values; divide "
                    "by 255 and normalize (e.g. transforms.Normalize(mean, std))", where)
        return
    if x.dim() == 2 and x.shape[0] >= 16 and x.shape[1] >= 2 and not integral:
        std = x.std(dim=0)
        varying = std[std > 1e-8]
        if varying.numel() >= 2 and float(varying.max() / varying.min()) > FEATURE_SCALE_RATIO:
            big, small = int(std.argmax()), int(torch.where(std > 1e-8, std, math.inf).argmin())
            probes.find("NNL803", f"input feature {big} has std {float(std[big]):.3g} but feature {small} "
                        f"{float(std[small]):.3g} ({float(varying.max() / varying.min()):.0f}x): standardize "
                        "each feature with the training mean and std", where)
            return
    dims = (0,) if x.dim() == 2 else ((0, 2, 3) if x.dim() == 4 else None)
    if dims is None:
        return
    mean, std = x.mean(dim=dims), x.std(dim=dims)
    far = (mean.abs() > 10 * torch.clamp(std, min=1.0)) | (std > 50)
    if bool(far.any()):
        i = int(far.nonzero()[0])
        what = "feature" if x.dim() == 2 else "channel"
        probes.find("NNL802", f"input {what} {i} has mean {float(mean[i]):.3g} and std {float(std[i]):.3g}, far "
                    "from 0 and 1: standardize the input with the training mean and std", where)


# -- NNL804 --------------------------------------------------------------------------------------


def _labels(probes: Probes) -> None:
    by_site: dict = {}
    for where, classes, labels in probes.labels:
        by_site.setdefault(where, []).append((classes, labels))
    for where, batches in by_site.items():
        if len(batches) < 3:
            continue
        classes = batches[0][0]
        everything = torch.cat([b for _, b in batches])
        present = torch.unique(everything)
        if present.numel() == 1:
            probes.find("NNL804", f"every label in {len(batches)} batches is class {int(present[0])}: the data has "
                        "one class only (wrong label column, or a filter that kept one class?)", where)
            continue
        first = batches[0][1]
        if len(batches) >= 5 and all(b.shape == first.shape and torch.equal(b, first) for _, b in batches[1:]):
            probes.find("NNL804", f"all {len(batches)} batches have the same labels in the same order: the same "
                        "batch repeats (a new DataLoader iterator every step?); iterate the loader once per epoch",
                        where)
            continue
        single = sum(torch.unique(b).numel() == 1 for _, b in batches)
        if len(batches) >= 5 and single >= 0.8 * len(batches) and first.numel() > 1:
            probes.find("NNL804", f"{single} of {len(batches)} batches hold a single class although there are "
                        f"{present.numel()}: the data is sorted by label; shuffle it (shuffle=True)", where)
            continue
        low = int(everything.min())
        if 3 <= classes <= 50 and low >= 1 and everything.numel() >= 20 * classes and \
                present.numel() >= 0.9 * (classes - 1):
            probes.find("NNL804", f"class 0 never occurs in {everything.numel()} labels while classes 1..{classes - 1} "
                        "do: the labels probably start at 1; shift them to start at 0", where)
            continue
        if classes <= 20 and everything.numel() >= 200:
            counts = torch.bincount(everything.clamp(min=0), minlength=classes).double()
            seen = counts[counts > 0]
            ratio = float(seen.max() / seen.min())
            if ratio > 20:
                probes.find("NNL804", f"class {int(counts.argmax())} is {ratio:.0f}x as frequent as class "
                            f"{int(torch.where(counts > 0, counts, math.inf).argmin())} in the first batches: weight "
                            "the loss (weight=...) or resample", where, severity="info")


# -- NNL805 --------------------------------------------------------------------------------------


def _initial_loss(probes: Probes) -> None:
    if probes.weights_loaded or any(f.code in ("NNL802", "NNL803") for f in probes.findings):
        return  # loaded weights start anywhere; unscaled inputs explain the start (and are reported)
    for call in probes.loss_calls:
        value = call.value
        if value is None or not math.isfinite(value):
            continue
        if call.classes and call.classes >= 2:
            expected = math.log(call.classes)
            margin = max(1.0, 0.5 * expected)
            if value > expected + margin:
                probes.find("NNL805", f"the first loss is {value:.3g}, far above ln({call.classes}) = {expected:.3g} "
                            "for an untrained classifier: the initial predictions are overconfident; initialize "
                            "the last layer small (or its bias to the class priors)", call.site)
            elif value < expected - margin:
                probes.find("NNL805", f"the first loss is {value:.3g}, far below ln({call.classes}) = {expected:.3g}: "
                            "an untrained model should not predict the labels; check for a label leak or a wrong "
                            "number of classes", call.site)
        elif call.kind == "mse_loss" and call.target_var is not None and call.target_var > 0:
            _regression_start(probes, call, value, call.target_var, "the variance of the target")
        elif call.kind == "l1_loss" and call.target_mad:
            _regression_start(probes, call, value, call.target_mad, "the mean deviation of the target")


def _regression_start(probes: Probes, call, value: float, baseline: float, what: str) -> None:
    if value > 10 * baseline + 1e-6:
        probes.find("NNL805", f"the first loss is {value:.3g}, {value / baseline:.0f}x the loss of predicting the target "
                    f"mean ({what}: {baseline:.3g}): standardize the targets or initialize the output bias to "
                    "their mean", call.site)


# -- NNL808 --------------------------------------------------------------------------------------


def _gradients(probes: Probes, roots: list[Root]) -> None:
    steps = probes.grad_norms
    if len(steps) < 3:
        return
    names = [n for n in steps[0]]
    dead = [n for n in names if all(step.get(n, 0.0) == 0.0 for step in steps)]
    if dead and len(dead) == len(names):
        probes.find("NNL808", f"no parameter had a gradient at any of {len(steps)} optimizer steps: is zero_grad() "
                    "called between backward() and step(), or is the loss detached?", probes.step_site)
        return
    if dead:
        shown = ", ".join(dead[:4]) + (f" and {len(dead) - 4} more" if len(dead) > 4 else "")
        where = _built_site(probes, roots, dead[0])
        probes.find("NNL808", f"{shown} never received a gradient in {len(steps)} steps: the graph is cut "
                    "before them (.detach(), .data, a tensor rebuilt from numbers) or they are unused", where)
    layers = [(n, statistics.median(step.get(n, 0.0) for step in steps)) for n in names
              if n.endswith("weight") and n not in dead and _is_matrix(probes, n)]
    layers = [(n, v) for n, v in layers if v > 0 and math.isfinite(v)]
    if len(layers) >= 3:
        (first, g_first), (last, g_last) = layers[0], layers[-1]
        if g_last / g_first > 1e4:
            probes.find("NNL808", f"gradients vanish toward the input: median norm {g_first:.2e} at `{first}` vs "
                        f"{g_last:.2e} at `{last}`; use a standard init, normalization or residual connections",
                        _built_site(probes, roots, first))
        elif g_first / g_last > 1e4:
            probes.find("NNL808", f"gradients explode toward the input: median norm {g_first:.2e} at `{first}` vs "
                        f"{g_last:.2e} at `{last}`; use normalization, a smaller init or gradient clipping",
                        _built_site(probes, roots, first))


def _is_matrix(probes: Probes, name: str) -> bool:
    return probes.param_dims.get(name, 2) >= 2


def _built_site(probes: Probes, roots: list[Root], param: str):
    several = len(probes.roots) > 1
    for root in roots:
        module = root.module
        prefix = f"{type(module).__name__}." if several and module is not None else ""
        if any(prefix + n == param for n in root.names.values()):
            return root.built or probes.step_site
    return probes.step_site


# -- NNL810, NNL811 ------------------------------------------------------------------------------


def _loss_curve(probes: Probes) -> None:
    losses = [v for v in probes.loss_series if math.isfinite(v)]
    if len(losses) < MIN_STEPS or len(probes.optimizers) > 1:  # adversarial losses need not fall
        return
    if any(f.code in ("NNL801", "NNL808", "NNL809") for f in probes.findings):
        return  # the curve's cause is already reported
    quarter = max(2, len(losses) // 4)
    start, end = statistics.median(losses[:quarter]), statistics.median(losses[-quarter:])
    if end >= start - 0.02 * abs(start):  # batch-to-batch noise aside, a working setup gains more than 2%
        trend = "rose" if end > start * 1.05 else "stayed flat"
        probes.find("NNL810", f"over {len(losses)} steps the smoothed loss {trend} ({start:.4g} -> {end:.4g}): try a "
                    "learning rate 10x larger and 10x smaller, check a warm-up that starts at zero, or --overfit",
                    probes.last_loss_site or probes.backward_site)


def _data_loading(probes: Probes) -> None:
    if len(probes.step_times) < 3 or probes.waiting_loader is None:
        return
    fractions = [w / t for w, t in zip(probes.data_waits, probes.step_times) if t > 0]
    waiting = statistics.median(fractions) if fractions else 0.0
    if not probes.on_accelerator:  # on the CPU, the main thread's CPU time is immune to other processes' load
        cpu = [w / t for w, t in zip(probes.data_wait_cpu, probes.step_cpu) if t > 0]
        waiting = max(waiting, statistics.median(cpu) if cpu else 0.0)
    mean_wait = sum(probes.data_waits) / len(probes.data_waits)
    if waiting > 0.5 and mean_wait > 0.01:
        workers = probes.loader_workers.get(probes.waiting_loader, 0)
        advice = ("raise num_workers" if workers else "set num_workers=4 (or more) and persistent_workers=True")
        probes.find("NNL811", f"{waiting:.0%} of each step ({mean_wait * 1000:.0f} ms) is spent waiting for the "
                    f"DataLoader (num_workers={workers}): {advice}; add pin_memory=True on a GPU",
                    probes.waiting_loader)
