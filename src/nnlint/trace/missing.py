"""Missing packages cost only the classes that need them.

A checked file's slice runs statement by statement. An import that fails binds its names to
placeholders; a class or function that touches a placeholder (as a base, a call, an attribute chain
that ends in a call) raises `MissingPackage`, which names the package and its import line, so the
runner can report the package once per file with the classes it blocks while the others trace.
"""

from __future__ import annotations
import __future__

import ast


class MissingPackage(ModuleNotFoundError):
    def __init__(self, package: str, line: int):
        super().__init__(f"No module named {package!r}", name=package)
        self.package, self.line = package, line


class Missing:
    """Stands for a name whose import failed; any real use raises MissingPackage."""

    def __init__(self, package: str, line: int, path: str = ""):
        object.__setattr__(self, "_where", (package, line, path))

    def _fail(self, *args, **kwargs):
        package, line, _ = object.__getattribute__(self, "_where")
        touched.setdefault(package, line)
        raise MissingPackage(package, line)

    def __getattr__(self, name):
        if name.startswith("__") and name != "__mro_entries__":
            raise AttributeError(name)
        if name == "__mro_entries__":
            return self._fail
        package, line, path = object.__getattribute__(self, "_where")
        return Missing(package, line, f"{path}.{name}")

    __call__ = __iter__ = __getitem__ = __enter__ = __len__ = __bool__ = _fail
    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = __truediv__ = __rtruediv__ = _fail
    __floordiv__ = __rfloordiv__ = __matmul__ = __rmatmul__ = __index__ = __int__ = __float__ = _fail

    def __repr__(self) -> str:
        package, line, path = object.__getattribute__(self, "_where")
        return f"<missing {package}{path}>"


touched: dict[str, int] = {}  # package -> import line, of the placeholders used since reset()


def reset() -> None:
    touched.clear()


def blocking(exc: BaseException | None) -> tuple[str, int] | None:
    """(package, import line) when `exc` comes from a package that is missing (line 0: not known)."""
    if isinstance(exc, MissingPackage):
        return exc.package, exc.line
    if isinstance(exc, ModuleNotFoundError) and exc.name:
        return exc.name.split(".")[0], 0
    return None


def _bound_names(stmt: ast.Import | ast.ImportFrom) -> list[str]:
    if isinstance(stmt, ast.Import):
        return [(a.asname or a.name).split(".")[0] for a in stmt.names]
    return [a.asname or a.name for a in stmt.names if a.name != "*"]


def execute(tree: ast.Module, path: str, namespace: dict) -> dict[str, BaseException]:
    """Run the slice's statements one by one into `namespace`.

    Returns {name a failed statement would have bound: its exception}, for the models it leaves
    undefined. A failed import binds placeholders instead; other failures leave their names undefined.
    """
    failures: dict[str, BaseException] = {}
    flags = 0
    for stmt in tree.body:
        if isinstance(stmt, ast.ImportFrom) and stmt.module == "__future__":
            for alias in stmt.names:
                feature = getattr(__future__, alias.name, None)
                flags |= getattr(feature, "compiler_flag", 0)
        code = compile(ast.Module(body=[stmt], type_ignores=[]), path, "exec", flags=flags, dont_inherit=True)
        try:
            exec(code, namespace)  # noqa: S102 - the checked file's own definitions, sliced
        except ImportError as exc:
            if not isinstance(stmt, (ast.Import, ast.ImportFrom)):
                _record(stmt, exc, failures)
                continue
            package = (exc.name or (stmt.module if isinstance(stmt, ast.ImportFrom) else "") or "?").split(".")[0]
            if isinstance(exc, MissingPackage):
                package = exc.package
            for name in _bound_names(stmt):
                namespace.setdefault(name, Missing(package, stmt.lineno))
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # noqa: BLE001 - one bad statement must not hide the others
            _record(stmt, exc, failures)
    return failures


def _record(stmt: ast.stmt, exc: BaseException, failures: dict[str, BaseException]) -> None:
    if isinstance(stmt, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
        names = [stmt.name]
    else:
        names = [n.id for n in ast.walk(stmt) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)]
    for name in names:
        failures[name] = exc
