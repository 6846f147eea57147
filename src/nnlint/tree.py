"""A fast walk over libcst trees.

libcst's own visitor rebuilds every node it passes and recurses in Python; walking the dataclass
fields directly, with an explicit stack, is several times cheaper and survives deep nesting.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import libcst as cst

# Fields that only hold whitespace, punctuation or comments: never interesting to a rule.
_SKIPPED_FIELDS = frozenset(
    {
        "lpar", "rpar", "comma", "semicolon", "colon", "dot", "equal", "star", "operator",
        "leading_lines", "lines_after_decorators", "header", "footer", "lbracket", "rbracket",
        "lbrace", "rbrace", "newline", "asynchronous", "trailing_whitespace",
    }
)
_fields_by_type: dict[type, tuple[str, ...]] = {}


def _child_fields(node_type: type) -> tuple[str, ...]:
    fields = _fields_by_type.get(node_type)
    if fields is None:
        fields = tuple(
            f.name
            for f in dataclasses.fields(node_type)
            if f.name not in _SKIPPED_FIELDS and not f.name.startswith("whitespace")
        )
        _fields_by_type[node_type] = fields
    return fields


_is_node_type: dict[type, bool] = {}


def _is_node(value_type: type) -> bool:
    # CSTNode is an ABC: isinstance() on it is slow, so answer once per concrete type.
    known = _is_node_type.get(value_type)
    if known is None:
        known = _is_node_type[value_type] = issubclass(value_type, cst.CSTNode)
    return known


def children(node: cst.CSTNode) -> list[cst.CSTNode]:
    """The node's child nodes in field order (close to source order)."""
    found: list[cst.CSTNode] = []
    for name in _child_fields(type(node)):
        value = getattr(node, name)
        value_type = type(value)
        if value_type is list or value_type is tuple:
            found.extend(item for item in value if _is_node(type(item)))
        elif _is_node(value_type):
            found.append(value)
    return found


def walk(node: cst.CSTNode) -> Iterator[cst.CSTNode]:
    """Every node under `node` (included), pre-order."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(reversed(children(current)))


# Exact types (libcst's node classes are final): isinstance() on them goes through ABC machinery.
_DEFINITIONS = frozenset({cst.FunctionDef, cst.ClassDef, cst.Lambda})


def walk_no_defs(node: cst.CSTNode) -> Iterator[cst.CSTNode]:
    """Like walk, but does not enter nested function, lambda or class bodies."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        if current is not node and type(current) in _DEFINITIONS:
            continue
        stack.extend(reversed(children(current)))
