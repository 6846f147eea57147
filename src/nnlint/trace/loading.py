"""Loading a checked file in the worker: its safe slice executed as a module, imported user modules sliced too.

Nothing here imports torch. The finder is installed by the worker before any request.
"""

from __future__ import annotations

import ast
import importlib.abc
import importlib.machinery
import importlib.util
import linecache
import os
import sys
import types

from nnlint.source import decode, python_newlines, read_bytes
from nnlint.trace import missing
from nnlint.trace.building import DefaultsNamespace
from nnlint.trace.guards import library_folders
from nnlint.trace.slicing import EVERYTHING, slice_module

# Module name -> the names sliced code imports from it ("*": the whole module, as far as it is safe).
_WANTED: dict[str, set[str]] = {}


def _sliced(data: bytes | str, path: str, roots, package: str) -> ast.Module:
    # decode(): the encoding cookie, a BOM and any line ending, as the static layer reads the file
    text = python_newlines(decode(data) if isinstance(data, bytes) else data)
    piece = slice_module(text, path, roots, package)
    for module, names in piece.imports.items():  # recorded before the code runs and imports them
        _WANTED.setdefault(module, set()).update(names)
    return piece.tree


class _SlicingLoader(importlib.machinery.SourceFileLoader):
    """Loads the project's own modules (imported by a checked file) as slices, never as programs:
    each for the names sliced code imports from it (all its definitions when unknown)."""

    def get_code(self, fullname):
        path = self.get_filename(fullname)
        package = fullname if self.is_package(fullname) else fullname.rpartition(".")[0]
        tree = _sliced(read_bytes(path), path, _WANTED.get(fullname) or {EVERYTHING}, package)
        return compile(tree, path, "exec", dont_inherit=True)


class _SlicingFinder(importlib.abc.MetaPathFinder):
    """Any module that resolves inside the project (the checked files' folders and the folder nnlint
    was started in), not the standard library, site-packages or nnlint itself, is loaded as a slice."""

    def __init__(self):
        self.user_dirs: set[str] = set()
        self.not_user: tuple[str, ...] = ()

    def add_project_folder(self, folder: str) -> None:
        if folder:
            self.user_dirs.add(os.path.realpath(folder))

    def find_spec(self, fullname, path, target=None):
        if not self.user_dirs:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or not spec.origin or not spec.origin.endswith(".py"):
            return None
        origin = os.path.realpath(spec.origin)
        if not self.not_user:
            self.not_user = library_folders()
        if origin.startswith(self.not_user) or os.sep + "site-packages" + os.sep in origin \
                or not any(origin.startswith(d.rstrip(os.sep) + os.sep) for d in self.user_dirs):
            return None
        spec.loader = _SlicingLoader(fullname, origin)
        return spec


FINDER = _SlicingFinder()


def _module_name(path: str) -> tuple[str, str]:
    """(sys.path root, dotted module name) of a file, honouring enclosing packages."""
    directory, filename = os.path.split(path)
    if filename.endswith(".ipynb"):  # not importable by others: a name that cannot clash
        return directory, "_nnlint_notebook_" + "".join(ch if ch.isalnum() else "_" for ch in filename[:-6])
    parts = [filename[:-3] if filename.endswith(".py") else filename]
    while os.path.exists(os.path.join(directory, "__init__.py")):
        directory, package = os.path.split(directory)
        parts.insert(0, package)
    return directory, ".".join(parts)


def load_slice(path: str, roots: set[str], source: str | None = None) -> types.ModuleType:
    """Execute the safe slice of `path` (or of `source`, a notebook's joined cells standing for it) as a
    module; its code objects carry `path` and the lines of what was sliced."""
    root, name = _module_name(path)
    if root not in sys.path:
        sys.path.insert(0, root)
    existing = sys.modules.get(name)
    if existing is not None and getattr(existing, "__file__", None) not in (None, path) and \
            os.path.dirname(os.path.realpath(getattr(existing, "__file__", "") or "")) not in FINDER.user_dirs:
        name = "_nnlint_user_" + name.replace(".", "_")  # do not shadow an installed module
    package = name.rpartition(".")[0]
    if package:
        try:
            importlib.import_module(package)
        except Exception:  # noqa: BLE001 - a broken package __init__ should not stop the file
            pass
        # The package may have imported this very module (sliced, by the finder): executing it a
        # second time would repeat its registrations (torchvision's @register_model refuses that).
        existing = sys.modules.get(name)
        if existing is not None and _is_sliced(existing) and os.path.abspath(getattr(existing, "__file__", "")) == path:
            return existing
    if source is None:
        tree = _sliced(read_bytes(path), path, roots, package)
    else:  # a notebook's joined cells: tracebacks and source lookups read them, not the JSON
        linecache.cache[path] = (len(source), None, source.splitlines(keepends=True), path)
        tree = _sliced(source, path, roots, package)
    module = types.ModuleType(name)
    module.__file__ = path
    module.__package__ = package
    setattr(module, "__nnlint_sliced__", True)  # noqa: B010 - a marker attribute of our own
    sys.modules[name] = module
    missing.reset()
    # Statement by statement: a failed import or definition costs only the classes that need it.
    setattr(module, "__nnlint_failures__", missing.execute(tree, path, module.__dict__))  # noqa: B010
    return module


def _is_sliced(module) -> bool:
    return module is not None and (getattr(module, "__nnlint_sliced__", False)
                                   or isinstance(getattr(module, "__loader__", None), _SlicingLoader))


def forget_sliced_modules() -> None:
    """Drop the user modules of earlier requests, so an edited file is loaded afresh."""
    for name, module in list(sys.modules.items()):
        if _is_sliced(module):
            del sys.modules[name]


UNKNOWN_VALUE = object()  # a call-site argument that is not literal: construction synthesizes it


def resolve_refs(value, namespace: dict):
    """Turn the discovery's JSON values back into Python: tuples and names of the module."""
    if isinstance(value, list):
        return [resolve_refs(v, namespace) for v in value]
    if isinstance(value, dict):
        if "$tuple" in value:
            return tuple(resolve_refs(v, namespace) for v in value["$tuple"])
        if "$unknown" in value:
            return UNKNOWN_VALUE
        if "$namespace" in value:  # parsed command-line arguments passed whole: their defaults
            parsed = DefaultsNamespace()
            for key, item in value["$namespace"].items():
                setattr(parsed, key, resolve_refs(item, namespace))
            return parsed
        if "$ref" in value:
            head, *rest = value["$ref"].split(".")
            obj = namespace[head] if head in namespace else __builtins__[head] if isinstance(
                __builtins__, dict) else getattr(__builtins__, head)
            for part in rest:
                obj = getattr(obj, part)
            return obj
        return {k: resolve_refs(v, namespace) for k, v in value.items()}
    return value
