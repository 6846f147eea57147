"""The compact table that ends the text report of `nnlint run`: loss sparkline, gradient norms, activations."""

from __future__ import annotations

import io
import math

BARS = "▁▂▃▄▅▆▇█"
MAX_LAYERS = 6


def sparkline(values: list[float], width: int = 24) -> str:
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return ""
    if len(values) > width:  # average into `width` buckets
        size = len(values) / width
        values = [_mean(values[int(i * size):int((i + 1) * size)] or values[-1:]) for i in range(width)]
    low, high = min(finite), max(finite)
    span = (high - low) or 1.0
    return "".join(BARS[min(7, int((v - low) / span * 8))] if math.isfinite(v) else "!" for v in values)


def _mean(values: list[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return sum(finite) / len(finite) if finite else math.nan


def _rows(series: dict) -> list[tuple[str, str, str, str]]:
    rows = []
    loss = series.get("loss", [])
    if loss:
        rows.append(("loss", sparkline(loss), f"{loss[0]:.4g}", f"{loss[-1]:.4g}"))
    layers = list(series.get("grad_norm", {}).items())
    for name, norms in layers[:MAX_LAYERS]:
        rows.append((f"grad ‖{name}‖", sparkline(norms), f"{norms[0]:.2e}", f"{norms[-1]:.2e}"))
    if len(layers) > MAX_LAYERS:
        rows.append((f"... {len(layers) - MAX_LAYERS} more layers", "", "", ""))
    activations = list(series.get("activations", {}).items())
    for name, samples in activations[:MAX_LAYERS // 2] + activations[-1:] if len(activations) > 3 else activations:
        stds = [s[2] for s in samples]
        rows.append((f"act std {name}", sparkline(stds), f"{stds[0]:.3g}", f"{stds[-1]:.3g}"))
    waits, times = series.get("data_wait", []), series.get("step_time", [])
    if times:
        share = [w / t if t else 0.0 for w, t in zip(waits, times)]
        rows.append(("data wait share", sparkline(share), f"{share[0]:.0%}", f"{share[-1]:.0%}"))
        rows.append(("step time (ms)", sparkline(times), f"{times[0] * 1000:.1f}", f"{times[-1] * 1000:.1f}"))
    return rows


def render_table(series: dict, color: bool) -> str:
    from rich.console import Console
    from rich.table import Table

    steps = len(series.get("loss", []))
    table = Table(title=f"first {steps} steps", title_justify="left", box=None, pad_edge=False)
    for column, justify in (("", "left"), ("over the steps", "left"), ("first", "right"), ("last", "right")):
        table.add_column(column, justify=justify)
    for row in _rows(series):
        table.add_row(*row)
    buffer = io.StringIO()
    Console(file=buffer, force_terminal=color, no_color=not color, width=100, highlight=False).print(table)
    return "\n" + buffer.getvalue()
