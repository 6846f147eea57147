"""The safe slice of a module: what its models need, transitively, and nothing that runs a program.

Starting from root names (the models to build, the factories and names their call sites use, or the
names another module imports from this one), a top-level statement is kept only if it binds a name
that kept code needs: imports, classes, functions, assignments, and `try`/`if` blocks made only of
such statements. What a kept statement needs is then needed too: a class's bases, decorators and
body (its methods may run), a function's decorators, defaults and body, an assignment's value. So an
unreferenced `@atexit.register` function, an unrelated class (its metaclass and `__init_subclass__`),
`X = Generic[int]`, and `data = load()` used only by `main()` never run; neither do calls, loops,
`with` blocks or `if __name__ == "__main__":`. A kept annotated assignment loses its annotation
(`STEPS: os.system(...) = 100` keeps `STEPS = 100`).

Statements keep their original line numbers (the slice is compiled from the original AST), so
stack traces of the sliced code point at the checked file's lines. `Slice.imports` says which names
the kept code imports from which module, so that a module of the project is sliced for exactly those.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field

EVERYTHING = "*"  # as a root: every class and function, and the call-free constants


@dataclass
class Slice:
    tree: ast.Module
    kept_lines: list[tuple[int, int]]  # (first, last) line of each kept top-level statement
    dropped_lines: list[tuple[int, int]]
    imports: dict[str, set[str]] = field(default_factory=dict)  # module -> names kept code imports ("*": all)

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


def _import_names(stmt) -> set[str]:
    if isinstance(stmt, ast.ImportFrom) and any(a.name == "*" for a in stmt.names):
        return {EVERYTHING}
    return {(a.asname or a.name).split(".")[0] for a in stmt.names}


def _binds(stmt) -> set[str]:
    """Top-level names a kept statement defines."""
    if isinstance(stmt, (ast.Import, ast.ImportFrom)):
        return _import_names(stmt)
    if isinstance(stmt, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
        return {stmt.name}
    if isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
        return _targets(stmt) | (_configured(stmt.value) if stmt.value is not None else set())
    if isinstance(stmt, ast.Expr):
        # `parser.add_argument("--nz", default=100)` belongs to the parser: kept with it, so a kept
        # `nz = int(opt.nz)` finds its default (the worker's parse_args returns the defaults).
        return _configured(stmt.value)
    if isinstance(stmt, (ast.If, ast.Try)):
        blocks = stmt.body + stmt.orelse + getattr(stmt, "finalbody", [])
        blocks += [s for h in getattr(stmt, "handlers", []) for s in h.body]
        return set().union(*(_binds(s) for s in blocks)) if blocks else set()
    return set()


def _uses(stmt) -> set[str]:
    """Names a kept statement needs: at definition time, and in the bodies that may run later."""
    if isinstance(stmt, (ast.Import, ast.ImportFrom)):
        return set()
    if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return _def_time_names(stmt) | _names(stmt.body)
    if isinstance(stmt, ast.AnnAssign):  # the annotation is dropped (see _without_annotation)
        return _names([stmt.value])
    if isinstance(stmt, ast.AugAssign):
        return _names([stmt.value]) | _targets(stmt)
    return _names([stmt])


def _without_annotation(stmt):
    """`x: T = v` as `x = v`: a module-level annotation is evaluated, and may call anything."""
    if isinstance(stmt, ast.AnnAssign) and stmt.value is not None and stmt.simple:
        return ast.copy_location(ast.Assign(targets=[stmt.target], value=stmt.value), stmt)
    return stmt


def _candidate(stmt) -> bool:
    """Top-level statements that may be kept at all."""
    if isinstance(stmt, (ast.Import, ast.ImportFrom, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
        return True
    if isinstance(stmt, (ast.Assign, ast.AugAssign)):
        return True
    if isinstance(stmt, ast.AnnAssign):
        return stmt.value is not None
    if isinstance(stmt, ast.Expr):
        return bool(_configured(stmt.value))
    if isinstance(stmt, (ast.Try, ast.If)):
        return _definitional(stmt)
    return False


def _imported_modules(stmt, package: str) -> dict[str, set[str]]:
    """{module: names} that an import statement asks of other modules ("*" for a whole module)."""
    out: dict[str, set[str]] = {}
    if isinstance(stmt, ast.Import):
        for alias in stmt.names:
            parts = alias.name.split(".")
            for end in range(1, len(parts) + 1):
                out.setdefault(".".join(parts[:end]), set()).add(EVERYTHING)
    elif isinstance(stmt, ast.ImportFrom):
        base = stmt.module or ""
        if stmt.level:
            anchor = package.split(".") if package else []
            anchor = anchor[:len(anchor) - (stmt.level - 1)] if stmt.level > 1 else anchor
            base = ".".join(anchor + ([stmt.module] if stmt.module else []))
        if base:
            out.setdefault(base, set()).update(a.name for a in stmt.names)
        for alias in stmt.names:  # `from pkg import sub` may name a submodule
            if alias.name != "*":
                out.setdefault(f"{base}.{alias.name}" if base else alias.name, set()).add(EVERYTHING)
    elif isinstance(stmt, (ast.If, ast.Try)):
        blocks = stmt.body + stmt.orelse + getattr(stmt, "finalbody", [])
        blocks += [s for h in getattr(stmt, "handlers", []) for s in h.body]
        for sub in blocks:
            for module, names in _imported_modules(sub, package).items():
                out.setdefault(module, set()).update(names)
    return out


def slice_module(source: str, filename: str = "<module>", roots: set[str] | None = None,
                 package: str = "") -> Slice:
    """Slice `source` for `roots` (top-level names that must be defined; "*": every class, function and
    call-free constant; None: every class). `package` resolves relative imports in `Slice.imports`."""
    tree = ast.parse(source, filename)
    body = tree.body
    candidates = [i for i, stmt in enumerate(body) if _candidate(stmt)]
    binds = {i: _binds(body[i]) for i in candidates}
    definitions = [s for s in (body[i] for i in candidates)
                   if isinstance(s, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))]
    if roots is None:
        needed = {s.name for s in definitions if isinstance(s, ast.ClassDef)}
    else:
        needed = set(roots)
    if EVERYTHING in needed:
        needed |= {s.name for s in definitions}
        # Constants (`HIDDEN = 24`, `SIZES = (A, 2 * A)`) another module may import: call-free values only.
        for i in candidates:
            stmt = body[i]
            if isinstance(stmt, (ast.Assign, ast.AnnAssign)) and stmt.value is not None and not _has_call(stmt.value):
                needed |= binds[i]

    kept: set[int] = set()
    changed = True
    while changed:
        changed = False
        for i in candidates:
            if i not in kept and (binds[i] & needed or EVERYTHING in binds[i]):
                kept.add(i)
                needed |= _uses(body[i])
                changed = True

    new_body, kept_lines, dropped_lines = [], [], []
    imports: dict[str, set[str]] = {}
    for index, stmt in enumerate(body):
        span = (stmt.lineno, stmt.end_lineno or stmt.lineno)
        if index in kept:
            new_body.append(_without_annotation(stmt))
            kept_lines.append(span)
            for module, names in _imported_modules(stmt, package).items():
                imports.setdefault(module, set()).update(names)
        else:
            dropped_lines.append(span)
    return Slice(ast.Module(body=new_body, type_ignores=[]), kept_lines, dropped_lines, imports)


def slice_roots(request: dict) -> set[str]:
    """The names the worker looks up in a checked module: models, factories, names their call sites use."""
    roots = set()
    for model in request["models"]:
        roots.add(model["name"])
        roots.update(model.get("factories", []))
        for call in model.get("instantiations", []):
            roots.update(_ref_heads([call.get("args"), call.get("kwargs")]))
    return roots


def _ref_heads(value) -> set[str]:
    if isinstance(value, list):
        return set().union(*map(_ref_heads, value)) if value else set()
    if isinstance(value, dict):
        if "$ref" in value:
            return {value["$ref"].split(".")[0]}
        return set().union(*map(_ref_heads, value.values())) if value else set()
    return set()
