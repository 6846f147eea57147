"""What `nnlint check` does: collect files, select codes per file, run the enabled layers, settle, sort."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from nnlint.config import DEFAULT_MAX_FILE_SIZE, ConfigError
from nnlint.diagnostics import Diagnostic, Severity
from nnlint.discovery import walk_folder
from nnlint.engine import FileTask
from nnlint.layers import Layer, StaticLayer, TraceLayer
from nnlint.report import Summary
from nnlint.selection import RuleSelection
from nnlint.source import DecodeError, UnreadableFile, decode, read_bytes
from nnlint.suppression import settle


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


def collect_files(paths: list[str], selection: RuleSelection) -> list[str]:
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
            return decode(read_bytes(path)).split("\n")
        except (UnreadableFile, DecodeError):
            return []

    return read


def layers_for(options: CheckOptions, progress: Callable[[], None] | None = None) -> list[Layer]:
    layers: list[Layer] = [StaticLayer(options.jobs, progress)]
    if not options.static_only:
        layers.append(TraceLayer(options))
    return layers


def run_layers(tasks: list[FileTask], selection: RuleSelection, layers: list[Layer]
               ) -> tuple[list[Diagnostic], list[Diagnostic], list[str]]:
    """(reported, suppressed, notes) of every layer whose codes some file enables; each finding settled once."""
    enabled_anywhere = frozenset().union(*(t.enabled for t in tasks))
    diagnostics: list[Diagnostic] = []
    suppressed: list[Diagnostic] = []
    notes: list[str] = []
    by_display = {t.display: t for t in tasks}
    for layer in layers:
        if not layer.codes & enabled_anywhere:
            continue  # e.g. no tracing under --select NNL3
        output = layer.run(tasks, selection)
        notes += output.notes
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
    return diagnostics, suppressed, notes


def _max_file_size(selection: RuleSelection, options: CheckOptions) -> int:
    if options.max_file_size is not None:
        return options.max_file_size
    settings = selection.project_settings()
    if settings is not None and settings.max_file_size is not None:
        return settings.max_file_size
    return DEFAULT_MAX_FILE_SIZE


def run_check(options: CheckOptions, progress: Callable[[int], Callable[[], None] | None] | None = None) -> CheckOutcome:
    started = time.perf_counter()
    selection = RuleSelection(options.select, options.ignore, options.config)
    files = collect_files(options.paths or ["."], selection)
    max_bytes = _max_file_size(selection, options)
    tasks = [FileTask(f, display_path(f), selection.for_path(f), max_bytes) for f in files]
    layers = layers_for(options, progress(len(tasks)) if progress else None)
    diagnostics, suppressed, notes = run_layers(tasks, selection, layers)
    diagnostics.sort(key=Diagnostic.sort_key)
    summary = Summary(files_checked=len(files), elapsed=time.perf_counter() - started, suppressed=suppressed)
    settings = selection.project_settings()
    return CheckOutcome(diagnostics, summary, settings.fail_on if settings else None, notes)
