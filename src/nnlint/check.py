"""What `nnlint check` does: collect files, resolve settings per file, lint (and trace), filter, sort."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from nnlint.config import DEFAULT_MAX_FILE_SIZE, ConfigError, ConfigFinder, Settings, expand_codes, load_file
from nnlint.diagnostics import Diagnostic, Severity
from nnlint.discovery import walk_folder
from nnlint.engine import FileTask, lint_files
from nnlint.report import Summary
from nnlint.rule import registry
from nnlint.source import DecodeError, UnreadableFile, decode, read_bytes
from nnlint.suppression import is_suppressed


@dataclass
class CheckOptions:
    paths: list[str]
    select: list[str] | None = None
    ignore: list[str] | None = None
    config: str | None = None
    static_only: bool = False
    fake: bool = False
    trace_timeout: float | None = None
    verbose: bool = False
    jobs: int | None = None
    max_file_size: int | None = None  # bytes; 0: no limit; None: the config's, else the default


@dataclass
class CheckOutcome:
    diagnostics: list[Diagnostic]
    summary: Summary
    fail_on: Severity | None
    notes: list[str] = field(default_factory=list)

    @property
    def internal_error(self) -> bool:
        return any(d.code == "NNL003" for d in self.diagnostics)


def display_path(path: str) -> str:
    """Relative to the working directory when inside it, else as given; always with forward slashes."""
    absolute = os.path.abspath(path)
    cwd = os.getcwd()
    if absolute == cwd or absolute.startswith(cwd.rstrip(os.sep) + os.sep):
        path = os.path.relpath(absolute, cwd)
    return path.replace(os.sep, "/")


class _Selection:
    """Enabled codes per file: settings, then CLI options over them, then per-file ignores."""

    def __init__(self, options: CheckOptions):
        self.known = list(registry())
        self.explicit = load_file(Path(options.config), self.known) if options.config else None
        self.finder = ConfigFinder(self.known)
        self.cli_select = expand_codes(options.select, self.known, "--select") if options.select else None
        self.cli_ignore = expand_codes(options.ignore, self.known, "--ignore") if options.ignore is not None else None
        self._cache: dict[tuple, frozenset[str]] = {}

    def settings(self, path: Path) -> Settings | None:
        return self.explicit or self.finder.for_path(path)

    def project_settings(self) -> Settings | None:
        """The settings of the working directory: run-wide options (fail-on, tracing) come from there."""
        return self.explicit or self.finder.for_path(Path(os.getcwd()) / "pyproject.toml")

    def enabled(self, path: Path) -> frozenset[str]:
        settings = self.settings(path)
        ignored_here = settings.ignored_for(path) if settings else set()
        key = (id(settings), frozenset(ignored_here))
        if key not in self._cache:
            select = self.cli_select
            if select is None:
                select = expand_codes(settings.select, self.known, "select") if settings and settings.select else set(self.known)
            ignore = self.cli_ignore
            if ignore is None:
                ignore = expand_codes(settings.ignore, self.known, "ignore") if settings else set()
            self._cache[key] = frozenset(select - ignore - ignored_here)
        return self._cache[key]


def collect_files(paths: list[str], selection: _Selection) -> list[str]:
    files: set[str] = set()
    for given in paths:
        if not os.path.lexists(given):
            raise ConfigError(f"path not found: {given}")
        if os.path.isdir(given):
            def excluded(p: Path) -> bool:
                settings = selection.settings(p)
                return settings is not None and settings.is_excluded(p)

            files.update(walk_folder(given, excluded))
        else:
            settings = selection.settings(Path(given))
            if settings is None or not settings.is_excluded(Path(given)):
                files.add(given)
    return sorted(files, key=display_path)


def _max_file_size(selection: _Selection, options: CheckOptions) -> int:
    if options.max_file_size is not None:
        return options.max_file_size
    settings = selection.project_settings()
    if settings is not None and settings.max_file_size is not None:
        return settings.max_file_size
    return DEFAULT_MAX_FILE_SIZE


def _fail_on(selection: _Selection) -> Severity | None:
    settings = selection.project_settings()
    return settings.fail_on if settings else None


def _trace(files: list[str], selection: _Selection, options: CheckOptions) -> tuple[list[Diagnostic], list[str]]:
    if options.static_only:
        return [], []
    from nnlint.trace.options import trace_options
    from nnlint.trace.runner import trace_files

    trace_opts = trace_options(selection.project_settings(), options)
    return trace_files([(f, display_path(f)) for f in files], trace_opts)


def _line_text(path: str, line: int, cache: dict[str, list[str]]) -> str:
    if path not in cache:
        try:
            cache[path] = decode(read_bytes(path)).split("\n")
        except (UnreadableFile, DecodeError):
            cache[path] = []
    lines = cache[path]
    return lines[line - 1].rstrip("\r") if 0 < line <= len(lines) else ""


def run_check(options: CheckOptions, progress: Callable[[int], Callable[[], None] | None] | None = None) -> CheckOutcome:
    started = time.perf_counter()
    selection = _Selection(options)
    files = collect_files(options.paths or ["."], selection)
    max_bytes = _max_file_size(selection, options)
    tasks = [FileTask(f, display_path(f), selection.enabled(Path(f)), max_bytes) for f in files]
    results = lint_files(tasks, options.jobs, progress(len(tasks)) if progress else None)
    diagnostics = [d for r in results for d in r.diagnostics]
    suppressed = [d for r in results for d in r.suppressed]

    traced, notes = _trace([f for f, r in zip(files, results) if not r.skipped], selection, options)
    enabled_by_display = {t.display: t.enabled for t in tasks}
    on_disk = {t.display: t.path for t in tasks}
    lines: dict[str, list[str]] = {}
    for d in traced:
        if d.code not in enabled_by_display.get(d.path, ()) and d.code != "NNL003":
            continue
        d = replace(d, line_text=_line_text(on_disk.get(d.path, d.path), d.line, lines))
        (suppressed if is_suppressed(d.code, d.line_text) else diagnostics).append(d)

    diagnostics.sort(key=Diagnostic.sort_key)
    summary = Summary(files_checked=len(files), elapsed=time.perf_counter() - started, suppressed=suppressed)
    return CheckOutcome(diagnostics, summary, _fail_on(selection), notes)


def warn(message: str) -> None:
    print(f"nnlint: {message}", file=sys.stderr)
