"""Small helpers for reading call arguments."""

from __future__ import annotations

import libcst as cst


def positional_args(call: cst.Call) -> list[cst.Arg]:
    return [a for a in call.args if a.keyword is None and not a.star]


def get_arg(call: cst.Call, position: int | None, keyword: str) -> cst.BaseExpression | None:
    """The argument passed at `position` or as `keyword=`, if any."""
    for arg in call.args:
        if arg.keyword is not None and arg.keyword.value == keyword:
            return arg.value
    if position is not None:
        positional = positional_args(call)
        if position < len(positional):
            return positional[position].value
    return None


def has_arg(call: cst.Call, position: int | None, keyword: str) -> bool:
    """Whether the argument is passed, or may be (through *args / **kwargs)."""
    if any(a.star for a in call.args):
        return True
    return get_arg(call, position, keyword) is not None
