"""Results cache: a file's static findings are kept under the hash of its bytes and of what was checked.

An entry is reused only when the file's content, the set of codes enabled for it and nnlint itself
(version plus its own source files, so an edited rule never serves stale results) are all unchanged.
Each kind of result lives in one JSON file per nnlint build under `.nnlint_cache/` at the project
root; the folder carries its own `.gitignore`, as Ruff's does, so it never shows up in `git status`.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from functools import lru_cache
from pathlib import Path

from nnlint import __version__
from nnlint.diagnostics import Applicability, Diagnostic, Edit, Fix, Severity

CACHE_DIR_NAME = ".nnlint_cache"
_GITIGNORE = "# Automatically created by nnlint.\n*\n"
_FIELDS = ("code", "name", "message", "line", "column", "end_line", "end_column")


def cache_dir(explicit: str | None, settings) -> Path:
    """`--cache-dir`, else `.nnlint_cache` beside the project's pyproject.toml, else in the working directory."""
    if explicit:
        return Path(explicit)
    return (settings.root if settings else Path(os.getcwd())) / CACHE_DIR_NAME


@lru_cache(maxsize=1)
def build_fingerprint() -> str:
    """nnlint's version and the size and mtime of its own modules: any edit to a rule changes it."""
    package = Path(__file__).resolve().parent
    digest = hashlib.sha256(__version__.encode())
    for path in sorted(package.rglob("*.py")):
        stat = path.stat()
        digest.update(f"{path.relative_to(package)}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def entry_key(*parts: bytes | str) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode() if isinstance(part, str) else part)
        digest.update(b"\0")
    return digest.hexdigest()


def to_row(diagnostic: Diagnostic) -> list:
    fix = diagnostic.fix.to_json() if diagnostic.fix else None
    return [getattr(diagnostic, name) for name in _FIELDS] + [diagnostic.severity.label, diagnostic.source,
                                                              diagnostic.line_text, fix, diagnostic.cell,
                                                              diagnostic.file_span]


def _fix(stored: dict | None) -> Fix | None:
    if stored is None:
        return None
    edits = tuple(Edit(e["line"], e["column"], e["end_line"], e["end_column"], e["content"]) for e in stored["edits"])
    return Fix(stored["message"], edits, Applicability(stored["applicability"]))


def from_row(row: list, path: str) -> Diagnostic:
    code, name, message, line, column, end_line, end_column, severity, source, line_text, fix, cell, span = row
    return Diagnostic(code, name, message, path, line, column, end_line, end_column, Severity.parse(severity),
                      source, line_text, _fix(fix), cell, tuple(span) if span else None)


class ResultCache:
    """One kind of result (`static`, `trace`) of one nnlint build, keyed by absolute path."""

    def __init__(self, directory: Path, kind: str):
        self.directory = directory
        self.file = directory / f"{kind}-{build_fingerprint()}.json"
        self.entries: dict[str, list] = {}
        self.changed = False
        try:
            with open(self.file, encoding="utf-8") as handle:
                loaded = json.load(handle)
            if isinstance(loaded, dict):
                self.entries = loaded
        except (OSError, ValueError):
            pass  # no cache yet, or a damaged one: start afresh

    def get(self, path: str, key: str, display: str) -> tuple[list[Diagnostic], list[Diagnostic]] | None:
        """(diagnostics, suppressed) stored for `path` under `key`, named `display`; None on a miss."""
        entry = self.entries.get(os.path.abspath(path))
        if not entry or entry[0] != key:
            return None
        try:
            return [from_row(r, display) for r in entry[1]], [from_row(r, display) for r in entry[2]]
        except (TypeError, ValueError, KeyError):
            return None

    def facts(self, path: str, key: str) -> list:
        """The facts (plain JSON rows) stored with `path`'s results under `key`; none on a miss."""
        entry = self.entries.get(os.path.abspath(path))
        if not entry or entry[0] != key or len(entry) < 4 or not isinstance(entry[3], list):
            return []
        return entry[3]

    def put(self, path: str, key: str, diagnostics: list[Diagnostic], suppressed: list[Diagnostic],
            facts: list | None = None) -> None:
        """Store the results, and any facts (JSON rows) the layer carries besides its findings."""
        entry = [key, [to_row(d) for d in diagnostics], [to_row(d) for d in suppressed]]
        self.entries[os.path.abspath(path)] = entry + ([facts] if facts else [])
        self.changed = True

    def save(self) -> str | None:
        """Write the cache atomically; a message instead of an exception when the folder is not writable."""
        if not self.changed:
            return None
        self.entries = {path: entry for path, entry in self.entries.items() if os.path.exists(path)}
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            ignore = self.directory / ".gitignore"
            if not ignore.exists():
                ignore.write_text(_GITIGNORE, encoding="utf-8")
            handle, temporary = tempfile.mkstemp(dir=self.directory, prefix=".tmp-", suffix=".json")
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                json.dump(self.entries, out, separators=(",", ":"))
            os.chmod(temporary, 0o644)
            os.replace(temporary, self.file)
        except OSError as exc:
            return f"cache not written to {self.directory}: {exc.strerror or exc} (--no-cache silences this)"
        self._drop_other_builds()
        return None

    def _drop_other_builds(self) -> None:
        """Entries of older nnlint builds can never be hit again."""
        kind = self.file.name.split("-", 1)[0]
        for old in self.directory.glob(f"{kind}-*.json"):
            if old != self.file:
                try:
                    old.unlink()
                except OSError:
                    pass
