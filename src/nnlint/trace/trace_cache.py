"""What a file's trace results depend on, as one key: the slice that runs, the request, the torch build.

The worker executes only the file's slice (imports, definitions), plus the user's own modules that
the slice imports, so an edit to code the slice drops (the `__main__` block, top-level loops and
calls that build no model) leaves the key unchanged, while an edit to a model, to a local module it
imports, to `[tool.nnlint]` model settings, or another torch changes it. Line numbers are part of
the slice, so findings never point at moved lines.
"""

from __future__ import annotations

import ast
import json
import os
from functools import lru_cache
from importlib import metadata

from nnlint.cache import build_fingerprint, entry_key
from nnlint.trace.slicing import slice_module, slice_roots


@lru_cache(maxsize=1)
def torch_version() -> str:
    try:
        return metadata.version("torch")
    except metadata.PackageNotFoundError:
        return "none"


def _imported_names(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.module:
                names.add(node.module.split(".")[0])
            if node.level:  # `from . import helper`
                names.update(alias.name for alias in node.names)
    return names


def _module_files(directory: str, name: str) -> list[str]:
    module, package = os.path.join(directory, name + ".py"), os.path.join(directory, name)
    if os.path.isfile(module):
        return [module]
    if os.path.isdir(package):
        return sorted(os.path.join(root, f) for root, _, files in os.walk(package) for f in files if f.endswith(".py"))
    return []


def _local_sources(tree: ast.Module, user_dirs: list[str]) -> list[str]:
    """Size and mtime of each of the user's modules the slice imports (a package: each of its files)."""
    found = []
    for directory in user_dirs:
        for name in sorted(_imported_names(tree)):
            for path in _module_files(directory, name):
                stat = os.stat(path)
                found.append(f"{path}:{stat.st_size}:{stat.st_mtime_ns}")
    return found


def trace_key(text: str, path: str, request: dict) -> str | None:
    """The cache key of one file's trace request; None when its slice cannot be built (not cached)."""
    try:  # the slice the worker runs: the same roots
        sliced = slice_module(text, path, slice_roots(request))
    except (SyntaxError, ValueError, RecursionError):
        return None
    user_dirs = request.get("user_dirs", [])
    return entry_key(ast.dump(sliced.tree, include_attributes=True), json.dumps(request, sort_keys=True),
                     *_local_sources(sliced.tree, user_dirs), torch_version(), build_fingerprint())
