"""What `nnlint check` does: collect files, resolve settings per file, lint (and trace), filter, sort."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from nnlint.config import ConfigError, ConfigFinder, Settings, expand_codes, load_file
from nnlint.diagnostics import Applicability, Diagnostic, Severity
from nnlint.discovery import walk_folder
from nnlint.cache import CACHE_DIR_NAME, ResultCache, entry_key
from nnlint.engine import FileResult, FileTask, fix_text, lint_files
from nnlint.report import Summary
from nnlint.registry import registry
from nnlint.source import UnreadableFile, decode, encode_like, read_bytes
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
    fix: frozenset[Applicability] = frozenset()  # fixes to apply: none, safe, or safe and unsafe
    diff: bool = False  # compute the fixes but write nothing (`--diff`)
    stdin: bytes | None = None  # `nnlint check -`: the source read from standard input
    stdin_filename: str | None = None  # where that source would live: names it, picks its config
    cache: bool = True
    cache_dir: str | None = None
    trace_pool: object | None = None  # a warm `trace.runner.WorkerPool` kept by a long-lived caller (the server)


@dataclass
class FileChange:
    """What fixing did (or, with --diff, would do) to one file."""

    display: str
    before: str
    after: str
    applied: list[Diagnostic]


@dataclass
class CheckOutcome:
    diagnostics: list[Diagnostic]
    summary: Summary
    fail_on: Severity | None
    notes: list[str] = field(default_factory=list)
    changes: list[FileChange] = field(default_factory=list)
    failed_writes: bool = False

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
    if "-" in paths and len(paths) > 1:
        raise ConfigError("'-' (read standard input) cannot be combined with other paths")
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


def _fail_on(selection: _Selection) -> Severity | None:
    settings = selection.project_settings()
    return settings.fail_on if settings else None


def _trace(files: list[str], selection: _Selection, options: CheckOptions) -> tuple[list[Diagnostic], list[str]]:
    if options.static_only or not files:
        return [], []
    from nnlint.trace.options import trace_options
    from nnlint.trace.runner import trace_files

    trace_opts = trace_options(selection.project_settings(), options)
    if options.cache:
        trace_opts.cache = ResultCache(_cache_dir(options, selection), "trace")
    found = trace_files([(f, display_path(f)) for f in files], trace_opts, pool=options.trace_pool)
    problem = trace_opts.cache.save() if trace_opts.cache else None
    return found[0], found[1] + ([problem] if problem else [])


def _line_text(path: str, line: int, cache: dict[str, list[str]]) -> str:
    if path not in cache:
        try:
            cache[path] = Path(path).read_text(encoding="utf-8", errors="replace").split("\n")
        except OSError:
            cache[path] = []
    lines = cache[path]
    return lines[line - 1].rstrip("\r") if 0 < line <= len(lines) else ""


def _stdin_task(options: CheckOptions, selection: _Selection) -> FileTask:
    """Standard input, named and configured as `--stdin-filename` (Ruff's convention), else `-`."""
    name = options.stdin_filename
    where = Path(name) if name else Path(os.getcwd()) / "stdin.py"
    return FileTask(name or "-", display_path(name) if name else "-", selection.enabled(where), options.stdin)


def _cache_dir(options: CheckOptions, selection: _Selection) -> Path:
    if options.cache_dir:
        return Path(options.cache_dir)
    settings = selection.project_settings()
    return (settings.root if settings else Path(os.getcwd())) / CACHE_DIR_NAME


def _lint_cached(tasks: list[FileTask], cache: ResultCache | None, jobs: int | None, progress) -> list[FileResult]:
    """Static results: cache hits as stored, the rest linted (in parallel) and stored."""
    if cache is None:
        return lint_files(tasks, jobs, progress)
    results: list[FileResult | None] = [None] * len(tasks)
    misses, keys = [], []
    for index, task in enumerate(tasks):
        try:
            data = read_bytes(task.path)
        except UnreadableFile:
            misses.append((index, task, None))
            continue
        key = entry_key(data, ",".join(sorted(task.enabled)))
        hit = cache.get(task.path, key, task.display)
        if hit is None:
            misses.append((index, replace(task, data=data), key))
        else:
            results[index] = FileResult(*hit)
            if progress:
                progress()
    for (index, task, key), result in zip(misses, lint_files([t for _, t, _ in misses], jobs, progress)):
        results[index] = result
        if key is not None:
            cache.put(task.path, key, result.diagnostics, result.suppressed)
    return results


def _apply_fixes(tasks: list[FileTask], results: list[FileResult], options: CheckOptions,
                 cache: ResultCache | None, outcome: CheckOutcome) -> None:
    """Fix each file that has applicable fixes; its result becomes what remains after fixing."""
    for index, (task, result) in enumerate(zip(tasks, results)):
        if not any(d.fix and d.fix.applicability in options.fix for d in result.diagnostics):
            continue
        data = task.data if task.data is not None else read_bytes(task.path)
        before = decode(data)
        after, applied, remaining = fix_text(before, task.display, task.enabled, options.fix)
        if after == before:
            continue
        outcome.changes.append(FileChange(task.display, before, after, applied))
        if options.diff:
            continue
        if options.stdin is not None:  # the CLI prints the fixed source instead
            results[index] = remaining
            continue
        new_data = encode_like(data, after)
        try:
            with open(task.path, "wb") as handle:
                handle.write(new_data)
        except OSError as exc:
            outcome.notes.append(f"cannot write fixes to {task.display}: {exc.strerror or exc}")
            outcome.failed_writes = True
            continue
        results[index] = remaining
        if cache is not None:
            cache.put(task.path, entry_key(new_data, ",".join(sorted(task.enabled))),
                      remaining.diagnostics, remaining.suppressed)


def run_check(options: CheckOptions, progress: Callable[[int], Callable[[], None] | None] | None = None) -> CheckOutcome:
    started = time.perf_counter()
    selection = _Selection(options)
    outcome = CheckOutcome([], Summary(0, 0.0), _fail_on(selection))
    notes = outcome.notes
    cache = None
    if options.stdin is not None:
        files, tasks = [], [_stdin_task(options, selection)]
        results = lint_files(tasks, 1)
        if options.verbose and not options.static_only:
            notes.append("tracing skipped for standard input: check the saved file to trace its models")
    else:
        files = collect_files(options.paths or ["."], selection)
        tasks = [FileTask(f, display_path(f), selection.enabled(Path(f))) for f in files]
        cache = ResultCache(_cache_dir(options, selection), "static") if options.cache else None
        results = _lint_cached(tasks, cache, options.jobs, progress(len(tasks)) if progress else None)
    if options.fix:
        _apply_fixes(tasks, results, options, cache, outcome)
    problem = cache.save() if cache else None
    if problem:
        notes.append(problem)
    diagnostics = [d for r in results for d in r.diagnostics]
    suppressed = [d for r in results for d in r.suppressed]

    traced, trace_notes = _trace(files, selection, options)
    notes += trace_notes
    enabled_by_display = {t.display: t.enabled for t in tasks}
    on_disk = {t.display: t.path for t in tasks}
    lines: dict[str, list[str]] = {}
    for d in traced:
        if d.code not in enabled_by_display.get(d.path, ()) and d.code != "NNL003":
            continue
        d = replace(d, line_text=_line_text(on_disk.get(d.path, d.path), d.line, lines))
        (suppressed if is_suppressed(d.code, d.line_text) else diagnostics).append(d)

    diagnostics.sort(key=Diagnostic.sort_key)
    outcome.diagnostics = diagnostics
    outcome.summary = Summary(files_checked=len(tasks), elapsed=time.perf_counter() - started, suppressed=suppressed)
    return outcome


def warn(message: str) -> None:
    print(f"nnlint: {message}", file=sys.stderr)
