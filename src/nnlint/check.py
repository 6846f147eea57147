"""What `nnlint check` does: collect files, select codes per file, run the enabled layers, settle, sort."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from nnlint.config import ConfigError
from nnlint.diagnostics import Diagnostic, Severity
from nnlint.discovery import walk_folder
from nnlint.engine import FileTask
from nnlint.layers import Layer, StaticLayer, TraceLayer
from nnlint.report import Summary
from nnlint.selection import RuleSelection
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
    # progress(files_done, files, models_done, models, current_file) while tracing (a front end's bar)
    trace_progress: Callable | None = field(default=None, compare=False, repr=False)


@dataclass
class CheckOutcome:
    diagnostics: list[Diagnostic]
    summary: Summary
    fail_on: Severity | None
    notes: list[str] = field(default_factory=list)
    snippets: list[str] = field(default_factory=list)  # `[tool.nnlint.models]` tables for NNL790s

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
        try:
            return Path(path).read_text(encoding="utf-8", errors="replace").split("\n")
        except OSError:
            return []

    return read


def layers_for(options: CheckOptions, progress: Callable[[], None] | None = None) -> list[Layer]:
    layers: list[Layer] = [StaticLayer(options.jobs, progress)]
    if not options.static_only:
        layers.append(TraceLayer(options))
    return layers


def run_layers(tasks: list[FileTask], selection: RuleSelection, layers: list[Layer]
               ) -> tuple[list[Diagnostic], list[Diagnostic], list[str], list[str]]:
    """(reported, suppressed, notes, snippets) of every layer whose codes some file enables; each
    finding settled once. Layers that can `prepare` (start trace workers) do so before any runs."""
    enabled_anywhere = frozenset().union(*(t.enabled for t in tasks))
    diagnostics: list[Diagnostic] = []
    suppressed: list[Diagnostic] = []
    notes: list[str] = []
    snippets: list[str] = []
    by_display = {t.display: t for t in tasks}
    active = [layer for layer in layers if layer.codes & enabled_anywhere]  # no tracing under --select NNL3
    for layer in active:
        if hasattr(layer, "prepare"):
            layer.prepare(tasks, selection)
    for layer in active:
        output = layer.run(tasks, selection)
        notes += output.notes
        snippets += output.snippets
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
    return diagnostics, suppressed, notes, snippets


def run_check(options: CheckOptions, progress: Callable[[int], Callable[[], None] | None] | None = None) -> CheckOutcome:
    started = time.perf_counter()
    selection = RuleSelection(options.select, options.ignore, options.config)
    files = collect_files(options.paths or ["."], selection)
    tasks = [FileTask(f, display_path(f), selection.for_path(f)) for f in files]
    layers = layers_for(options, progress(len(tasks)) if progress else None)
    try:
        diagnostics, suppressed, notes, snippets = run_layers(tasks, selection, layers)
    finally:
        for layer in layers:
            if hasattr(layer, "close"):
                layer.close()
    diagnostics.sort(key=Diagnostic.sort_key)
    summary = Summary(files_checked=len(files), elapsed=time.perf_counter() - started, suppressed=suppressed)
    settings = selection.project_settings()
    reported = {d.code for d in diagnostics}
    return CheckOutcome(diagnostics, summary, settings.fail_on if settings else None, notes,
                        snippets if "NNL790" in reported else [])
