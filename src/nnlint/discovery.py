"""Find the Python files and notebooks to check: walk folders, skip what nobody wants linted, honour .gitignore."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pathspec

CHECKED_SUFFIXES = (".py", ".ipynb")
SKIPPED_DIRS = frozenset({"__pycache__", "build", "dist", "node_modules", "site-packages", "venv", "env"})


def _is_virtualenv(path: str) -> bool:
    return os.path.isfile(os.path.join(path, "pyvenv.cfg"))


def _gitignore_spec(directory: str):
    path = os.path.join(directory, ".gitignore")
    if not os.path.isfile(path):
        return None
    import pathspec

    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return pathspec.GitIgnoreSpec.from_lines(handle)
    except OSError:
        return None


def _enclosing_gitignores(directory: str) -> list[tuple[str, pathspec.GitIgnoreSpec]]:
    """.gitignore files of the folders above `directory`, up to the repository root."""
    specs = []
    current = os.path.abspath(directory)
    while True:
        parent = os.path.dirname(current)
        if os.path.isdir(os.path.join(current, ".git")) or parent == current:
            break
        current = parent
        spec = _gitignore_spec(current)
        if spec is not None:
            specs.append((current, spec))
    return specs


def _ignored(path: str, is_dir: bool, specs: list[tuple[str, pathspec.GitIgnoreSpec]]) -> bool:
    for base, spec in specs:
        rel = os.path.relpath(path, base).replace(os.sep, "/")
        if spec.match_file(rel + "/" if is_dir else rel):
            return True
    return False


def _unignoring(spec, root: str, base: str):
    """`spec` without the patterns that exclude `root` itself: a folder named explicitly is checked."""
    import pathspec

    rel = os.path.relpath(root, base).replace(os.sep, "/") + "/"
    kept = [p for p in spec.patterns if not (p.include and p.match_file(rel))]
    return pathspec.GitIgnoreSpec(kept) if len(kept) != len(spec.patterns) else spec


def walk_folder(root: str, excluded: Callable[[Path], bool]) -> Iterator[str]:
    """Every *.py and *.ipynb file under `root`, in sorted order, minus skipped and ignored folders."""
    inherited = [(base, _unignoring(spec, root, base)) for base, spec in _enclosing_gitignores(root)]
    stack = [(root, inherited)]
    while stack:
        directory, specs = stack.pop()
        own = _gitignore_spec(directory)
        if own is not None:
            specs = specs + [(directory, own)]
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError:
            continue
        subdirs = []
        for entry in entries:
            path = entry.path
            if entry.is_dir(follow_symlinks=False):
                name = entry.name
                if name.startswith(".") or name in SKIPPED_DIRS or _is_virtualenv(path):
                    continue
                if _ignored(path, True, specs) or excluded(Path(path)):
                    continue
                subdirs.append((path, specs))
            elif entry.name.endswith(CHECKED_SUFFIXES) and not _ignored(path, False, specs) \
                    and not excluded(Path(path)):
                yield path
        stack.extend(reversed(subdirs))
