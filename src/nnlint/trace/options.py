"""`[tool.nnlint.trace]`, `[tool.nnlint.models.*]` and the CLI's trace flags, as the runner's options."""

from __future__ import annotations

import os

from nnlint.config import ConfigError, Settings
from nnlint.trace.workers import TraceOptions

_MEMORY_UNITS = {"k": 1024, "m": 1024**2, "g": 1024**3}


def parse_memory(value) -> int:
    """Bytes from an int or a string like "4G" / "512M"."""
    if isinstance(value, int):
        return value
    text = str(value).strip().lower().removesuffix("ib").removesuffix("b")
    unit = _MEMORY_UNITS.get(text[-1:], 1)
    try:
        return int(float(text.rstrip("kmg")) * unit)
    except ValueError:
        raise ConfigError(f"invalid memory limit {value!r} in [tool.nnlint.trace] (e.g. 4G, 512M)") from None


def trace_options(settings: Settings | None, cli) -> TraceOptions:
    table = settings.trace if settings else {}
    options = TraceOptions(
        fake=cli.fake,
        verbose=cli.verbose,
        jobs=cli.jobs or os.cpu_count() or 1,
        models=dict(settings.models) if settings else {},
        config_root=str(settings.root) if settings else ".",
    )
    try:
        if "timeout" in table:
            options.timeout = float(table["timeout"])
        if "memory" in table:
            options.memory = parse_memory(table["memory"])
        if "fake-threshold" in table:
            options.fake_threshold = int(table["fake-threshold"])
        if "batch-size" in table:
            options.batch_size = int(table["batch-size"])
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"invalid value in [tool.nnlint.trace]: {exc}") from None
    if cli.trace_timeout is not None:
        options.timeout = cli.trace_timeout
    return options
