"""The safe slice of a module: what defining its models needs, and nothing that runs a program.

Kept: imports, function and class definitions, `try`/`if` blocks made only of such statements, and
the top-level assignments that kept code references, transitively. A function's body only counts
when a class or a requested root (a factory) reaches it, so `data = load()` used by `def main()` is
dropped. Everything else (calls, loops, `if __name__ == "__main__":`, `with`, ...) is dropped.

Statements keep their original line numbers (the slice is compiled from the original AST), so
stack traces of the sliced code point at the checked file's lines.
"""

from __future__ import annotations

import ast
from collections.abc import Collection
from dataclasses import dataclass

_BUILTIN_NAMES = frozenset(dir(__import__("builtins")))


@dataclass
class Slice:
    tree: ast.Module
    kept_lines: list[tuple[int, int]]  # (first, last) line of each kept top-level statement
    dropped_lines: list[tuple[int, int]]

    def compile(self, filename: str):
        return compile(self.tree, filename, "exec", dont_inherit=True)


def _names(nodes) -> set[str]:
    """Every name loaded in `nodes`, minus those local to a function or comprehension inside them.

    Scoping matters for safety: a method's local `data = x` must not pull in a top-level
    `data = load_dataset()`.
    """
    out: set[str] = set()
    for node in nodes:
        if node is not None:
            out |= _free(node)
    return out


_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ListComp, ast.SetComp,
           ast.DictComp, ast.GeneratorExp)


def _free(node) -> set[str]:
    if isinstance(node, ast.Name):
        return {node.id} if isinstance(node.ctx, ast.Load) else set()
    if isinstance(node, _SCOPES):
        return _scope_free(node)
    out: set[str] = set()
    for child in ast.iter_child_nodes(node):
        out |= _free(child)
    return out


def _scope_free(node) -> set[str]:
    """Free names of a function/lambda/comprehension: loads not bound inside it."""
    outer: set[str] = set()  # evaluated in the enclosing scope
    inner: list[ast.AST] = []
    bound: set[str] = set()
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
        args = node.args
        for arg in args.posonlyargs + args.args + args.kwonlyargs + [args.vararg, args.kwarg]:
            if arg is not None:
                bound.add(arg.arg)
                if arg.annotation is not None:
                    outer |= _free(arg.annotation)
        outer |= _names(list(args.defaults) + [d for d in args.kw_defaults if d])
        if isinstance(node, ast.Lambda):
            inner = [node.body]
        else:
            outer |= _names(node.decorator_list) | _names([node.returns])
            inner = list(node.body)
    else:
        generators = node.generators
        outer |= _free(generators[0].iter)
        for gen in generators:
            bound |= {n.id for n in ast.walk(gen.target) if isinstance(n, ast.Name)}
        inner = [g for g in generators[1:]] + [c for g in generators for c in g.ifs]
        inner += [g.iter for g in generators[1:]]
        inner += [node.key, node.value] if isinstance(node, ast.DictComp) else [node.elt]
    declared_global: set[str] = set()
    for stmt in inner:
        for sub in _walk_scope(stmt):
            if isinstance(sub, ast.Name) and not isinstance(sub.ctx, ast.Load):
                bound.add(sub.id)
            elif isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                bound.add(sub.name)
            elif isinstance(sub, (ast.Import, ast.ImportFrom)):
                bound |= {(a.asname or a.name).split(".")[0] for a in sub.names}
            elif isinstance(sub, ast.Global):
                declared_global |= set(sub.names)
            elif isinstance(sub, ast.ExceptHandler) and sub.name:
                bound.add(sub.name)
    loads: set[str] = set()
    for stmt in inner:
        loads |= _free(stmt)
    return outer | (loads - (bound - declared_global))


def _walk_scope(node):
    """ast.walk that does not descend into nested scopes (their bindings are their own)."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        if current is not node and isinstance(current, _SCOPES):
            continue
        stack.extend(ast.iter_child_nodes(current))


def _targets(stmt) -> set[str]:
    targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
    return {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}


def _def_time_names(node: ast.FunctionDef | ast.AsyncFunctionDef) -> set[str]:
    """Names evaluated when the `def` statement runs: decorators, defaults, annotations."""
    args = node.args
    parts = list(node.decorator_list) + list(args.defaults) + [d for d in args.kw_defaults if d]
    for arg in args.posonlyargs + args.args + args.kwonlyargs + [args.vararg, args.kwarg]:
        if arg is not None and arg.annotation is not None:
            parts.append(arg.annotation)
    if node.returns is not None:
        parts.append(node.returns)
    return _names(parts)


_PARSER_METHODS = frozenset({"add_argument", "add_argument_group", "add_mutually_exclusive_group",
                             "set_defaults"})


def _configured(value) -> set[str]:
    """The argument parser a call configures (`parser.add_argument(...)`), as a name, or nothing."""
    if (isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute)
            and value.func.attr in _PARSER_METHODS and isinstance(value.func.value, ast.Name)):
        return {value.func.value.id}
    return set()


def _is_main_guard(test: ast.expr) -> bool:
    return (isinstance(test, ast.Compare) and isinstance(test.left, ast.Name)
            and test.left.id == "__name__")


def _has_call(node) -> bool:
    return any(isinstance(sub, (ast.Call, ast.Await, ast.Yield, ast.YieldFrom)) for sub in ast.walk(node))


def _definitional(stmt) -> bool:
    """Statements allowed inside a kept `try`/`if` block."""
    if isinstance(stmt, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef,
                         ast.ClassDef, ast.Pass)):
        return True
    if isinstance(stmt, ast.Expr):
        return isinstance(stmt.value, ast.Constant)
    if isinstance(stmt, (ast.Assign, ast.AnnAssign)):
        return stmt.value is None or not _has_call(stmt.value)
    if isinstance(stmt, ast.If):
        return (not _is_main_guard(stmt.test) and not _has_call(stmt.test)
                and all(map(_definitional, stmt.body + stmt.orelse)))
    if isinstance(stmt, ast.Try):
        blocks = stmt.body + stmt.orelse + stmt.finalbody + [s for h in stmt.handlers for s in h.body]
        return all(map(_definitional, blocks))
    return False


def slice_module(source: str, filename: str = "<module>", roots: Collection[str] = frozenset()) -> Slice:
    """Slice `source`. `roots` are top-level function names whose bodies must be runnable ("*": all)."""
    tree = ast.parse(source, filename)
    functions: dict[str, ast.FunctionDef | ast.AsyncFunctionDef] = {}
    for stmt in tree.body:
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
            functions[stmt.name] = stmt

    needed: set[str] = set()
    kept: set[int] = set()  # indices of kept statements
    assignments: list[tuple[int, set[str], set[str]]] = []  # index, targets, names used
    for index, stmt in enumerate(tree.body):
        if isinstance(stmt, (ast.Import, ast.ImportFrom)):
            kept.add(index)
        elif isinstance(stmt, ast.ClassDef):
            kept.add(index)
            needed |= _names([stmt])
        elif isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
            kept.add(index)
            needed |= _def_time_names(stmt)
        elif isinstance(stmt, (ast.Try, ast.If)) and _definitional(stmt):
            kept.add(index)
            needed |= _names([stmt])
        elif isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign)) and stmt.value is not None:
            used = _names([stmt.value])
            if isinstance(stmt, ast.AnnAssign):
                used |= _names([stmt.annotation])
            assignments.append((index, _targets(stmt) | _configured(stmt.value), used))
        elif isinstance(stmt, ast.Expr) and _configured(stmt.value):
            # `parser.add_argument("--nz", default=100)`: kept with the parser, so a kept
            # `nz = int(opt.nz)` finds its default (the worker's parse_args returns the defaults).
            assignments.append((index, _configured(stmt.value), _names([stmt.value])))
    needed |= set(functions) if "*" in roots else set(roots)

    # Constants (`HIDDEN = 24`, `SIZES = (A, 2 * A)`) stay even when unreferenced here: another
    # module may import them. Only call-free values over names already safe to evaluate qualify.
    safe = {n for stmt in tree.body if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
            for n in [stmt.name]}
    for stmt in tree.body:
        if isinstance(stmt, (ast.Import, ast.ImportFrom)):
            safe |= {(a.asname or a.name).split(".")[0] for a in stmt.names}
    changed = True
    while changed:
        changed = False
        for index, targets, used in assignments:
            stmt = tree.body[index]
            assert isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign, ast.Expr))  # Expr: parser setup
            if index not in kept and not _has_call(stmt.value) and used <= safe | _BUILTIN_NAMES:
                kept.add(index)
                safe |= targets
                changed = True

    # Fixpoint: a needed function's body and a needed assignment's value need more names.
    expanded: set[str] = set()
    changed = True
    while changed:
        changed = False
        for name in list(needed - expanded):
            expanded.add(name)
            if name in functions:
                needed |= _names(functions[name].body)
                changed = True
        for index, targets, used in assignments:
            if index not in kept and targets & needed:
                kept.add(index)
                needed |= used
                changed = True

    body, kept_lines, dropped_lines = [], [], []
    for index, stmt in enumerate(tree.body):
        span = (stmt.lineno, stmt.end_lineno or stmt.lineno)
        if index in kept:
            body.append(stmt)
            kept_lines.append(span)
        else:
            dropped_lines.append(span)
    return Slice(ast.Module(body=body, type_ignores=[]), kept_lines, dropped_lines)
