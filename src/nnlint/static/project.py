"""The checked files as one project: which checked file an import names, and a summary of each module.

A summary is plain, picklable data (what a model class's forward returns, whether it has layers
that behave differently in eval mode), computed once per module and process, on demand: only when
another checked file imports it and a rule needs to know. The module parsed for a summary is kept
until the engine checks that file itself, so a file is parsed once in a serial run.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass

import libcst as cst


@dataclass(frozen=True)
class ClassSummary:
    name: str
    path: str
    output: object  # flow.Tensor / flow.Pack of what `forward` returns, or None when unknown
    eval_sensitive: bool | None  # has dropout / batch norm (True), none (False), or unknown (None)
    is_module: bool  # an nn.Module (a torch.nn base, or a forward method)


@dataclass(frozen=True)
class ModuleSummary:
    path: str
    classes: tuple[tuple[str, ClassSummary], ...]

    def get(self, name: str) -> ClassSummary | None:
        return next((summary for key, summary in self.classes if key == name), None)


# `from pkg.mod import a` (group 1: "pkg.mod", ".mod") and `import a.b, c as d` (group 2).
_IMPORT_LINE = re.compile(r"^[ \t]*(?:from[ \t]+(\.*[\w.]*)[ \t]+import\b|import[ \t]+([\w., \t]+))", re.M)


class ProjectIndex:
    """The set of files checked together, and their summaries."""

    def __init__(self, paths: Iterable[str]):
        self.paths = {os.path.abspath(p) for p in paths}
        self._summaries: dict[str, ModuleSummary | None] = {}
        self._parsed: dict[str, tuple[str, cst.Module]] = {}

    def resolve(self, importer: str, module: str, level: int = 0) -> str | None:
        """The checked file that `import module` (or `from .module`, `level` dots) in `importer` names."""
        if not importer:
            return None
        folder = os.path.dirname(os.path.abspath(importer))
        parts = module.split(".") if module else []
        if level:
            for _ in range(level - 1):
                folder = os.path.dirname(folder)
            bases = [folder]
        else:  # absolute: the importer's folder or one above it is on sys.path when it runs
            bases = [folder]
            for _ in range(3):
                folder = os.path.dirname(folder)
                bases.append(folder)
        for base in bases:
            stem = os.path.join(base, *parts)
            for candidate in (stem + ".py", os.path.join(stem, "__init__.py")):
                if candidate in self.paths:
                    return candidate
        return None

    def dependencies(self, path: str, text: str) -> list[str]:
        """The checked files this file imports, directly or through them (their summaries feed its facts).

        Read off the import lines with a regular expression, without parsing: cheap enough for cache keys."""
        found: list[str] = []
        pending = [(os.path.abspath(path), text)]
        while pending:
            importer, source = pending.pop()
            for match in _IMPORT_LINE.finditer(source):
                if match.group(1) is not None:  # from X import ...
                    level = len(match.group(1)) - len(match.group(1).lstrip("."))
                    modules = [match.group(1).lstrip(".")]
                else:
                    level, modules = 0, [m.split(" as ")[0].strip() for m in match.group(2).split(",")]
                for module in modules:
                    target = self.resolve(importer, module, level)
                    if target and target not in found and target != os.path.abspath(path):
                        found.append(target)
                        try:
                            with open(target, encoding="utf-8", errors="replace") as handle:
                                pending.append((target, handle.read()))
                        except OSError:
                            pass
        return sorted(found)

    def summary(self, path: str) -> ModuleSummary | None:
        if path in self._summaries:
            return self._summaries[path]
        self._summaries[path] = None  # an import cycle sees nothing
        from nnlint.context import FileContext
        from nnlint.source import DecodeError, UnreadableFile, decode, read_bytes
        from nnlint.static.flow import summarize

        try:
            text = decode(read_bytes(path))
            module = cst.parse_module(text)
        except (UnreadableFile, DecodeError, cst.ParserSyntaxError, RecursionError, MemoryError, ValueError):
            return None
        self._parsed[path] = (text, module)
        ctx = FileContext(path, module, project=self, file_path=path)
        ctx.imports.add_all(module)
        self._summaries[path] = summarize(ctx)
        return self._summaries[path]

    def parsed(self, path: str, text: str) -> cst.Module | None:
        """The module already parsed for a summary, if its text is still `text` (handed out once)."""
        kept = self._parsed.pop(os.path.abspath(path), None)
        return kept[1] if kept is not None and kept[0] == text else None
