"""Where in the user's code something happened: the first frame outside torch, nnlint and libraries."""

from __future__ import annotations

import os
import sys
import sysconfig
import types

import torch

_NNLINT = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
_TORCH = os.path.dirname(os.path.abspath(torch.__file__)) + os.sep
_STDLIB = tuple({os.path.abspath(sysconfig.get_paths()[k]) + os.sep for k in ("stdlib", "platstdlib")})
_LIBRARIES = ("site-packages", "dist-packages")

Site = tuple  # (path, line, column, end_line, end_column); columns 1-based, end exclusive

_kind_cache: dict[str, int] = {}


def _kind(filename: str) -> int:
    """0: torch or nnlint (never user code); 1: stdlib or an installed library; 2: the user's code."""
    kind = _kind_cache.get(filename)
    if kind is None:
        path = os.path.abspath(filename) if not filename.startswith("<") else filename
        if path.startswith((_NNLINT, _TORCH)) or filename.startswith("<"):
            kind = 0
        elif path.startswith(_STDLIB) or any(part in path.split(os.sep) for part in _LIBRARIES):
            kind = 1
        else:
            kind = 2
        _kind_cache[filename] = kind
    return kind


def frame_site(frame: types.FrameType) -> Site:
    """The span of the expression the frame is executing (the call), else its whole line."""
    code, line = frame.f_code, frame.f_lineno
    try:
        positions = list(code.co_positions())[frame.f_lasti // 2]
    except (AttributeError, IndexError):
        positions = (None, None, None, None)
    start, end, column, end_column = positions
    if start == line and end is not None and column is not None and end_column is not None:
        if end != start:  # a call spanning lines: report its first line from the start of the call
            return (code.co_filename, line, column + 1, line, column + 2)
        return (code.co_filename, line, column + 1, end, end_column + 1)
    return (code.co_filename, line, 1, line, 1)


def user_frame(frame: types.FrameType | None = None, skip_init_of: type | None = None) -> types.FrameType | None:
    """The innermost frame of user code above `frame`; library code if no user code is on the stack.

    `skip_init_of`: also pass over `__init__` frames of instances of this class, so a module built by
    `model = Net()` is located at that line, not at `super().__init__()` inside `Net`.
    """
    frame = frame or sys._getframe(1)
    library = None
    while frame is not None:
        kind = _kind(frame.f_code.co_filename)
        if kind and skip_init_of is not None and frame.f_code.co_name == "__init__" and \
                isinstance(frame.f_locals.get("self"), skip_init_of):
            kind = 0
        if kind == 2:
            return frame
        if kind == 1 and library is None:
            library = frame
        frame = frame.f_back
    return library


def site(frame: types.FrameType | None = None, skip_init_of: type | None = None) -> Site | None:
    found = user_frame(frame or sys._getframe(1), skip_init_of)
    return frame_site(found) if found is not None else None


def traceback_site(tb: types.TracebackType | None) -> Site | None:
    """The innermost user frame of a traceback (where the user's code failed)."""
    best = library = None
    while tb is not None:
        kind = _kind(tb.tb_frame.f_code.co_filename)
        if kind == 2:
            best = tb
        elif kind == 1:
            library = library or tb
        tb = tb.tb_next
    chosen = best or library
    if chosen is None:
        return None
    frame = chosen.tb_frame
    code = frame.f_code
    try:
        start, end, column, end_column = list(code.co_positions())[chosen.tb_lasti // 2]
    except (AttributeError, IndexError):
        start = None
    if start == chosen.tb_lineno and end == start and column is not None and end_column is not None:
        return (code.co_filename, start, column + 1, end, end_column + 1)
    return (code.co_filename, chosen.tb_lineno, 1, chosen.tb_lineno, 1)
