"""Source positions of the reported nodes, computed the way libcst's PositionProvider does, but cheaply.

libcst's provider (and importing libcst.metadata) costs about twice the parse of a small file, which
matters for a one-file pre-commit run. This runs the same code generation with a lean state: newline
counting instead of a regex split, a plain context object instead of a generator-based one, and it
stops as soon as every reported node has its position.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

import libcst as cst
from libcst._nodes.internal import CodegenState

from nnlint.tree import children

Span = tuple[int, int, int, int]  # start line, start column (0-based), end line, end column


class _AllFound(Exception):
    pass


class _Syntactic:
    """The context manager libcst's nodes enter around their syntactic part."""

    __slots__ = ("state", "node", "start_node", "end_node", "start")

    def __init__(self, state, node, start_node, end_node):
        self.state, self.node, self.start_node, self.end_node = state, node, start_node, end_node

    def __enter__(self):
        self.start = (self.state.line, self.state.column)

    def __exit__(self, *exc_info):
        if exc_info[0] is not None:  # unwinding (done, or a real error): record nothing
            return
        state = self.state
        spans = state.spans
        start = spans[self.start_node][:2] if self.start_node is not None else self.start
        end = spans[self.end_node][2:] if self.end_node is not None else (state.line, state.column)
        spans[self.node] = (*start, *end)
        state.found(self.node)


@dataclass
class _LocatingState(CodegenState):
    wanted: set = field(default_factory=set)
    spans: dict = field(default_factory=dict)
    line: int = 1
    column: int = 0
    starts: list = field(default_factory=list)

    def add_indent_tokens(self) -> None:
        self.tokens.extend(self.indent_tokens)
        for token in self.indent_tokens:
            self._advance(token)

    def add_token(self, value: str) -> None:
        self.tokens.append(value)
        self._advance(value)

    def _advance(self, value: str) -> None:
        newlines = value.count("\n")
        if newlines:
            self.line += newlines
            self.column = len(value) - value.rfind("\n") - 1
        else:
            self.column += len(value)

    def before_codegen(self, node: cst.CSTNode) -> None:
        self.starts.append((self.line, self.column))

    def after_codegen(self, node: cst.CSTNode) -> None:
        start = self.starts.pop()
        if node not in self.spans:  # the syntactic position, when recorded, wins
            self.spans[node] = (*start, self.line, self.column)
        self.found(node)

    def record_syntactic_position(self, node, *, start_node=None, end_node=None):
        return _Syntactic(self, node, start_node, end_node)

    def found(self, node: cst.CSTNode) -> None:
        if node in self.wanted:
            self.wanted.discard(node)
            if not self.wanted:
                raise _AllFound


# Code generation recurses once per nesting level (a few frames each): deep but valid code (a chain
# of 2,000 attribute accesses, 1,000 adjacent strings) needs more than the default stack.
DEEP_RECURSION_LIMIT = 200_000
DEEP_STACK_BYTES = 512 * 1024 * 1024  # virtual; only the pages touched are used


def locate(module: cst.Module, nodes: list[cst.CSTNode], statement_lines: Sequence[int] | None = None
           ) -> dict[cst.CSTNode, Span]:
    """Start and end (1-based lines, 0-based columns, end exclusive) of each node. `statement_lines`,
    when known (`reparse`), says where each top-level statement's code begins: only those holding a
    node are then generated."""
    try:
        return _locate(module, nodes, statement_lines)
    except RecursionError:
        return _locate_on_deep_stack(module, nodes)


def _locate_on_deep_stack(module: cst.Module, nodes: list[cst.CSTNode]) -> dict[cst.CSTNode, Span]:
    """`_locate` in a thread with a large stack and recursion limit; {} if even that is not enough."""
    result: dict = {}

    def run() -> None:
        try:
            result.update(_locate(module, nodes))
        except (RecursionError, MemoryError):
            pass

    old_limit, old_stack = sys.getrecursionlimit(), threading.stack_size()
    try:
        threading.stack_size(DEEP_STACK_BYTES)
        sys.setrecursionlimit(max(old_limit, DEEP_RECURSION_LIMIT))
        thread = threading.Thread(target=run, name="nnlint-locate")
        thread.start()
        thread.join()
    finally:
        sys.setrecursionlimit(old_limit)
        threading.stack_size(old_stack)
    return result


def _locate(module: cst.Module, nodes: list[cst.CSTNode], statement_lines: Sequence[int] | None = None
            ) -> dict[cst.CSTNode, Span]:
    wanted = set(nodes)
    if statement_lines is None:
        spans = _generate(module, module, wanted, 1) if wanted else {}
    else:  # code only the statements that hold a wanted node (a node of no statement has no place)
        spans = {}
        for statement, line in zip(module.body, statement_lines):
            inside = _wanted_inside(statement, wanted)
            if inside:
                spans.update(_generate(statement, module, inside, line))
    return {node: spans[node] for node in nodes if node in spans}


def _generate(node: cst.CSTNode, module: cst.Module, wanted: set, line: int) -> dict[cst.CSTNode, Span]:
    """Spans of the nodes of `node`'s code, which begins at column 0 of `line`, until `wanted` are found."""
    state = _LocatingState(default_indent=module.default_indent, default_newline=module.default_newline,
                           wanted=set(wanted), line=line)
    try:
        node._codegen(state)
    except _AllFound:
        pass
    return state.spans


def _wanted_inside(statement: cst.CSTNode, wanted: set) -> set:
    found = set()
    stack = [statement]
    while stack:
        node = stack.pop()
        if node in wanted:
            found.add(node)
        stack.extend(children(node))
    return found
