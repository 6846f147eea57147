"""Shapes the checked code writes about forward's inputs, in comments above or in forward and in its
docstring (`# x: (B, 1, 28, 28)`, `x: Tensor of shape (batch, 3, 32, 32)`): the last input candidate.

Pure libcst, in the checker process. A line (or `;`-separated clause) names a forward parameter (or `input`) and gives a
bracketed shape; each dimension is an integer or a name, and the batch must be named. Names are
mapped to the worker's symbols (batch -> B, sequence -> T, C/H/W); other names stay free sizes.
"""

from __future__ import annotations

import re

import libcst as cst

_BATCH = {"b", "n", "bs", "bsz", "batch", "batch_size"}
_SEQUENCE = {"t", "l", "seq", "seq_len", "seqlen", "seq_length", "sequence_length"}
_NAMED = {"c": "C", "channels": "C", "h": "H", "height": "H", "w": "W", "width": "W"}
_LINE = re.compile(r"^[\s#*\-]*(?P<name>\w+)\b(?P<rest>.*)$")
_GROUP = re.compile(r"[(\[]([^()\[\]]*)[)\]]")


def comment_inputs(forward: cst.FunctionDef) -> list[str]:
    """Specs ("float32[B,1,28,28]") for forward's leading positional inputs that a comment shapes."""
    params = [p.name.value for p in list(forward.params.posonly_params) + list(forward.params.params)][1:]
    shapes: dict[str, str] = {}
    for text in _texts(forward):
        for line in re.split(r"[\n;]", text):
            match = _LINE.match(line)
            if not match:
                continue
            name = match.group("name")
            if name not in params and name.lower() in ("input", "inputs") and params:
                name = params[0]
            if name in params and name not in shapes:
                spec = next(filter(None, map(_spec, _GROUP.findall(match.group("rest")))), None)
                if spec:
                    shapes[name] = spec
    out = []
    for name in params:
        if name not in shapes:
            break
        out.append(shapes[name])
    return out


def _texts(forward: cst.FunctionDef) -> list[str]:
    """Comments just above forward, its docstring, then the comments in its body, in source order."""
    above = [line.comment.value for line in forward.leading_lines if line.comment]
    docstring = forward.get_docstring()
    collector = _Comments()
    forward.body.visit(collector)
    return above + ([docstring] if docstring else []) + collector.found


class _Comments(cst.CSTVisitor):
    def __init__(self) -> None:
        self.found: list[str] = []

    def visit_Comment(self, node: cst.Comment) -> None:
        self.found.append(node.value)


def _spec(group: str) -> str | None:
    parts = [p.strip() for p in group.split(",")]
    if len(parts) > 1 and not parts[-1]:  # `(B,)`
        parts.pop()
    dims = []
    for part in parts:
        if part.isdigit() and int(part) > 0:
            dims.append(part)
        elif part.isidentifier():
            lower = part.lower()
            dims.append("B" if lower in _BATCH else "T" if lower in _SEQUENCE else _NAMED.get(lower, part))
        else:
            return None
    return f"float32[{','.join(dims)}]" if "B" in dims else None
