"""The one guard around checked code in the worker: whatever it raises becomes a described failure.

Checked code may raise anything, SystemExit and other BaseExceptions included; all of them mean
"this candidate failed", never "stop the worker". Only Ctrl-C (KeyboardInterrupt) passes through.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager


class CheckedCodeFailed(Exception):
    """Checked code raised `original`; `str()` is a one-line description of it."""

    def __init__(self, original: BaseException):
        super().__init__(describe(original))
        self.original = original


@contextmanager
def checked_code() -> Iterator[None]:
    """Run the body as checked code: any exception but KeyboardInterrupt becomes CheckedCodeFailed."""
    try:
        yield
    except (KeyboardInterrupt, CheckedCodeFailed):  # Ctrl-C, or already wrapped by an inner guard
        raise
    except BaseException as exc:  # noqa: BLE001 - the one place that catches everything
        raise CheckedCodeFailed(exc) from exc


def describe(exc: BaseException) -> str:
    """One line: the exception type and the first line of its message, or the memory cap it hit."""
    if isinstance(exc, CheckedCodeFailed):
        exc = exc.original
    if isinstance(exc, MemoryError) or "can't allocate memory" in str(exc) or \
            "DefaultCPUAllocator" in str(exc):
        cap = int(os.environ.get("NNLINT_MEMORY_CAP", "0"))
        return f"exceeded the memory cap ({cap / 1024**3:.1f} GiB)" if cap else "ran out of memory"
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text[:200]}" if text else type(exc).__name__
