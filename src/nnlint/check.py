"""What `nnlint check` does: collect files, select codes per file, run the enabled layers, settle, sort."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from nnlint.cache import ResultCache, cache_dir, entry_key
from nnlint.config import DEFAULT_MAX_FILE_SIZE, ConfigError
from nnlint.diagnostics import Applicability, Diagnostic, Severity
from nnlint.discovery import walk_folder
from nnlint.engine import FileTask, fix_text
from nnlint.layers import Layer, StaticLayer, TraceLayer, lint_cached
from nnlint.observations import SoftmaxRank, Span, span_of
from nnlint.report import Summary
from nnlint.selection import RuleSelection
from nnlint.source import DecodeError, UnreadableFile, decode, encode_like, python_newlines, read_bytes
from nnlint.static.shapes import SoftmaxImplicitDim
from nnlint.suppression import FileResult, settle

if TYPE_CHECKING:
    from nnlint.trace.workers import EarlyWorker, WorkerPool


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
    fix: frozenset[Applicability] = frozenset()  # fixes to apply: none, safe, or safe and unsafe
    diff: bool = False  # compute the fixes but write nothing (`--diff`)
    stdin: bytes | None = None  # `nnlint check -`: the source read from standard input
    stdin_filename: str | None = None  # where that source would live: names it, picks its config
    cache: bool = True
    cache_dir: str | None = None
    trace_pool: WorkerPool | None = None  # a warm pool kept by a long-lived caller (the server)
    early_worker: EarlyWorker | None = None  # a worker the CLI started first, for the trace layer's pool
    # progress(files_done, files, models_done, models, current_file) while tracing (a front end's bar)
    trace_progress: Callable | None = field(default=None, compare=False, repr=False)


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
    snippets: list[str] = field(default_factory=list)  # `[tool.nnlint.models]` tables for NNL790s
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


def collect_files(paths: list[str], selection: RuleSelection) -> list[str]:
    if "-" in paths and len(paths) > 1:
        raise ConfigError("'-' (read standard input) cannot be combined with other paths")
    files: set[str] = set()
    for given in paths:
        if not os.path.lexists(given):
            raise ConfigError(f"path not found: {given}")
        if os.path.isdir(given):
            files.update(walk_folder(given, selection.is_excluded))
        elif not selection.is_excluded(given):
            files.add(given)
    return sorted(files, key=display_path)


def _read_lines(path: str) -> Callable[[], list[str]]:
    def read() -> list[str]:
        try:  # the encoding cookie, a BOM and any line ending, as the static layer reads the file
            return python_newlines(decode(read_bytes(path))).split("\n")
        except (UnreadableFile, DecodeError):
            return []

    return read


def layers_for(options: CheckOptions, progress: Callable[[], None] | None = None,
               cache: ResultCache | None = None) -> list[Layer]:
    layers: list[Layer] = [StaticLayer(options.jobs, progress, cache)]
    if not options.static_only and options.stdin is None:  # tracing imports the file from disk
        layers.append(TraceLayer(options))
    return layers


def with_traced_facts(diagnostics: list[Diagnostic], softmax_ranks: list[SoftmaxRank],
                      placed: Callable[[Diagnostic], Diagnostic] | None = None) -> list[Diagnostic]:
    """The findings, with the fixes tracing makes exact: NNL302's where every traced run of that very call
    (same file, same span) saw one input rank. A guessed rank (None) agrees with nothing. `placed` gives
    a finding's place as the facts have it, when the finding is elsewhere (a notebook's joined cells)."""
    ranks: dict[Span, set[int | None]] = {}
    for fact in softmax_ranks:
        ranks.setdefault(fact.span, set()).add(fact.rank)
    refined = []
    for d in diagnostics:
        seen = ranks.get(span_of(placed(d) if placed else d), set()) if d.code == SoftmaxImplicitDim.code else set()
        rank = next(iter(seen)) if len(seen) == 1 else None
        refined.append(d if rank is None else SoftmaxImplicitDim.with_traced_rank(d, rank))
    return refined


def _active(tasks: list[FileTask], layers: list[Layer]) -> list[Layer]:
    enabled_anywhere = frozenset().union(*(t.enabled for t in tasks))
    return [layer for layer in layers if layer.codes & enabled_anywhere]  # no tracing under --select NNL3


def run_layers(tasks: list[FileTask], selection: RuleSelection, layers: list[Layer]
               ) -> tuple[list[Diagnostic], list[Diagnostic], list[str], list[str]]:
    """(reported, suppressed, notes, snippets) of every layer whose codes some file enables; each
    finding settled once, then given the fixes tracing made exact. Layers that can `prepare` (start
    trace workers) do so before any runs."""
    diagnostics: list[Diagnostic] = []
    suppressed: list[Diagnostic] = []
    notes: list[str] = []
    snippets: list[str] = []
    softmax_ranks: list[SoftmaxRank] = []
    by_display = {t.display: t for t in tasks}
    active = _active(tasks, layers)
    for layer in layers:  # an inactive layer's prepare releases what was started for it
        if hasattr(layer, "prepare"):
            layer.prepare(tasks, selection)
    for layer in active:
        output = layer.run(tasks, selection)
        notes += output.notes
        snippets += output.snippets
        softmax_ranks += output.softmax_ranks
        raw_by_file: dict[str, list[Diagnostic]] = {}
        for d in output.raw:
            raw_by_file.setdefault(d.path, []).append(d)
        results = list(output.settled)
        for display, found in raw_by_file.items():
            task = by_display.get(display)
            if task is not None:
                results.append(settle(found, task.enabled, _read_lines(task.path)))
        for result in results:
            diagnostics += result.diagnostics
            suppressed += result.suppressed
    return with_traced_facts(diagnostics, softmax_ranks), suppressed, notes, snippets


def _stdin_task(options: CheckOptions, selection: RuleSelection) -> FileTask:
    """Standard input, named and configured as `--stdin-filename` (Ruff's convention), else `-`."""
    name = options.stdin_filename
    where = Path(name) if name else Path(os.getcwd()) / "stdin.py"
    return FileTask(name or "-", display_path(name) if name else "-", selection.for_path(where), options.stdin)


def _ranks_before_fixing(tasks: list[FileTask], results: list[FileResult], selection: RuleSelection,
                         layers: list[Layer]) -> list[SoftmaxRank]:
    """What tracing the files as they are tells NNL302's fixes, when some file has one and tracing runs:
    a fix must be exact before it is applied, and applying fixes moves the lines tracing saw. The
    check after fixing traces again (from the cache for files the fixes left alone)."""
    if not any(d.code == SoftmaxImplicitDim.code and d.fix for result in results for d in result.diagnostics):
        return []
    tracers = [layer for layer in _active(tasks, layers) if layer.name == "trace"]
    for layer in tracers:
        if hasattr(layer, "prepare"):
            layer.prepare(tasks, selection)
    return [seen for layer in tracers for seen in layer.run(tasks, selection).softmax_ranks]


def _apply_fixes(tasks: list[FileTask], options: CheckOptions, cache: ResultCache | None,
                 outcome: CheckOutcome, selection: RuleSelection, layers: list[Layer]) -> list[FileTask]:
    """Fix every file with applicable fixes (before any layer runs, so all of them see the fixed code);
    the tasks to check afterwards (stdin's carries its fixed text)."""
    results = lint_cached(tasks, cache, options.jobs)
    ranks = _ranks_before_fixing(tasks, results, selection, layers)

    def refine(found: list[Diagnostic], placed: Callable[[Diagnostic], Diagnostic] | None) -> list[Diagnostic]:
        return with_traced_facts(found, ranks, placed)

    for index, (task, result) in enumerate(zip(tasks, results)):
        if not any(d.fix and d.fix.applicability in options.fix for d in refine(result.diagnostics, None)):
            continue
        data = task.data if task.data is not None else read_bytes(task.path)
        before = decode(data)
        after, applied, remaining = fix_text(before, task.display, task.enabled, options.fix, refine)
        if after == before:
            continue
        outcome.changes.append(FileChange(task.display, before, after, applied))
        new_data = encode_like(data, after)
        if options.diff:
            continue
        if task.data is not None:  # stdin: the CLI prints the fixed source
            tasks[index] = replace(task, data=new_data)
            continue
        try:
            with open(task.path, "wb") as handle:
                handle.write(new_data)
        except OSError as exc:
            outcome.notes.append(f"cannot write fixes to {task.display}: {exc.strerror or exc}")
            outcome.failed_writes = True
            continue
        if cache is not None:
            cache.put(task.path, entry_key(new_data, ",".join(sorted(task.enabled))),
                      remaining.diagnostics, remaining.suppressed)
    return tasks


Progress = Callable[[int], Callable[[], None] | None]  # given the file count, a per-file tick (or None)


def _max_file_size(settings, options: CheckOptions) -> int:
    if options.max_file_size is not None:
        return options.max_file_size
    if settings is not None and settings.max_file_size is not None:
        return settings.max_file_size
    return DEFAULT_MAX_FILE_SIZE


def run_check(options: CheckOptions, progress: Progress | None = None) -> CheckOutcome:
    started = time.perf_counter()
    selection = RuleSelection(options.select, options.ignore, options.config)
    settings = selection.project_settings()
    outcome = CheckOutcome([], Summary(0, 0.0), settings.fail_on if settings else None)
    if options.stdin is not None:
        tasks = [_stdin_task(options, selection)]
        if options.verbose and not options.static_only:
            outcome.notes.append("tracing skipped for standard input: check the saved file to trace its models")
    else:
        max_bytes = _max_file_size(settings, options)
        tasks = [FileTask(f, display_path(f), selection.for_path(f), max_bytes=max_bytes)
                 for f in collect_files(options.paths or ["."], selection)]
    cache = None
    if options.cache and options.stdin is None:
        cache = ResultCache(cache_dir(options.cache_dir, settings), "static")
    layers = layers_for(options, progress(len(tasks)) if progress else None, cache)
    try:
        if options.fix:
            tasks = _apply_fixes(tasks, options, cache, outcome, selection, layers)
        diagnostics, suppressed, notes, snippets = run_layers(tasks, selection, layers)
    finally:
        for layer in layers:
            if hasattr(layer, "close"):
                layer.close()
    problem = cache.save() if cache else None
    outcome.notes += notes + ([problem] if problem else [])
    diagnostics.sort(key=Diagnostic.sort_key)
    outcome.diagnostics = diagnostics
    outcome.snippets = snippets if any(d.code == "NNL790" for d in diagnostics) else []
    outcome.summary = Summary(files_checked=len(tasks), elapsed=time.perf_counter() - started, suppressed=suppressed)
    return outcome
