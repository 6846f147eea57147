"""The layers behind one interface: each names the codes it can report and runs over the checked files.

`nnlint.api` runs every layer whose codes are enabled somewhere, then settles each file's findings
once (`suppression.settle`). A layer returns findings it has already settled when the file's text is
only at hand inside it (the static layer's worker processes); the others come back raw.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Protocol

from nnlint import notebook
from nnlint.cache import ResultCache, cache_dir, entry_key
from nnlint.diagnostics import Diagnostic
from nnlint.engine import FileTask, lint_files
from nnlint.observations import SoftmaxRank
from nnlint.registry import registry
from nnlint.selection import RuleSelection
from nnlint.source import UnreadableFile, read_bytes
from nnlint.static.project import ProjectIndex
from nnlint.suppression import FileResult

if TYPE_CHECKING:
    from nnlint.check import CheckOptions
    from nnlint.trace.workers import WorkerPool


@dataclass
class LayerOutput:
    settled: list[FileResult] = field(default_factory=list)  # already filtered and noqa'd
    raw: list[Diagnostic] = field(default_factory=list)  # to settle: codes, line text, noqa
    notes: list[str] = field(default_factory=list)  # said on stderr, never part of the report
    snippets: list[str] = field(default_factory=list)  # config tables printed after the report
    softmax_ranks: list[SoftmaxRank] = field(default_factory=list)  # facts that make NNL302's fix exact


class Layer(Protocol):
    name: str

    @property
    def codes(self) -> frozenset[str]:
        """Every code this layer can report."""
        ...

    def run(self, files: list[FileTask], selection: RuleSelection) -> LayerOutput:
        """Check the files (each names the codes enabled for it)."""
        ...


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _codes_of(*layers: str) -> frozenset[str]:
    return frozenset(code for code, rule in registry().items() if rule.layer in layers)


def lint_cached(tasks: list[FileTask], cache: ResultCache | None, jobs: int | None = None,
                progress: Callable[[], None] | None = None) -> list[FileResult]:
    """Static results in the tasks' order: cache hits as stored, the rest linted (in parallel) and stored."""
    if cache is None:
        return lint_files(tasks, jobs, progress)
    project = ProjectIndex(task.path for task in tasks)
    results: list[FileResult | None] = [None] * len(tasks)
    misses: list[tuple[int, FileTask, str | None]] = []
    for index, task in enumerate(tasks):
        try:
            data = task.data if task.data is not None else read_bytes(task.path)
        except UnreadableFile:
            misses.append((index, task, None))  # linting reports why
            continue
        # Facts cross files through imports: a file's result also depends on the checked files it imports.
        imported = [_bytes_or_empty(path) for path in project.dependencies(task.path, data.decode("utf-8", "replace"))]
        too_large = task.max_bytes is not None and 0 < task.max_bytes < len(data)  # NNL005 either way
        key = entry_key(data, ",".join(sorted(task.enabled)), "too large" if too_large else "", *imported)
        hit = cache.get(task.path, key, task.display)
        if hit is None:
            misses.append((index, replace(task, data=data), key))
        else:
            results[index] = FileResult(*hit)
            if progress:
                progress()
    for (index, task, entry), result in zip(misses, lint_files([t for _, t, _ in misses], jobs, progress, project)):
        results[index] = result
        if entry is not None:
            cache.put(task.path, entry, result.diagnostics, result.suppressed)
    return [r for r in results if r is not None]  # every slot is filled by now


def _bytes_or_empty(path: str) -> bytes:
    try:
        return read_bytes(path)
    except UnreadableFile:
        return b""


class StaticLayer:
    """libcst rules, one walk per file; tool diagnostics (unreadable, unparsable, crashed rule) too."""

    name = "static"

    def __init__(self, jobs: int | None = None, progress: Callable[[], None] | None = None,
                 cache: ResultCache | None = None):
        self.jobs = jobs
        self.progress = progress
        self.cache = cache

    @property
    def codes(self) -> frozenset[str]:
        return _codes_of("static", "tool")

    def run(self, files: list[FileTask], selection: RuleSelection) -> LayerOutput:
        return LayerOutput(settled=lint_cached(files, self.cache, self.jobs, self.progress))


class TraceLayer:
    """Builds each nn.Module in a sandboxed worker and checks one forward pass."""

    name = "trace"

    def __init__(self, options: CheckOptions):
        self.options = options  # the front end's trace flags: fake, timeout, verbose, jobs
        self.pool: WorkerPool | None = None  # started by prepare(), when no warm pool was given

    @property
    def codes(self) -> frozenset[str]:
        return _codes_of("trace")

    def prepare(self, files: list[FileTask], selection: RuleSelection) -> None:
        """Start the workers now, so their `import torch` overlaps the static layer: as many as
        files that mention torch, up to --jobs; none, and the CLI's early worker let go, when no file
        enabling a traced code mentions torch."""
        import importlib.util

        if self.pool is not None or self.options.trace_pool is not None or importlib.util.find_spec("torch") is None:
            return
        from nnlint.trace.options import trace_options
        from nnlint.trace.workers import WorkerPool

        early = self.options.early_worker
        wanted = 0
        if any(self.codes & task.enabled for task in files):
            options = trace_options(selection.project_settings(), self.options)
            for task in files:
                try:
                    with open(task.path, "rb") as handle:
                        wanted += b"torch" in handle.read()
                except OSError:
                    continue
                if wanted >= options.jobs:
                    break
        if wanted:
            self.pool = WorkerPool(options, early=early)
            self.pool.start_early(wanted)
        elif early is not None:  # nothing to trace: free its core for the static pass now
            early.discard()

    def close(self) -> None:
        if self.pool is not None:
            self.pool.close()
            self.pool = None

    def run(self, files: list[FileTask], selection: RuleSelection) -> LayerOutput:
        from nnlint.trace.options import trace_options
        from nnlint.trace.runner import trace_files

        settings = selection.project_settings()
        options = trace_options(settings, self.options)
        if self.options.cache:
            options.cache = ResultCache(cache_dir(self.options.cache_dir, settings), "trace")
        # Every file goes to discovery, enabled or not: a model's base class may live in another file;
        # but not one above max-file-size (the static layer notes it).
        snippets: list[str] = []
        ranks: list[SoftmaxRank] = []
        diagnostics, notes = trace_files([(f.path, f.display) for f in files
                                          if not f.max_bytes or f.path.endswith(notebook.SUFFIX)
                                          or _size(f.path) <= f.max_bytes], options,
                                         pool=self.options.trace_pool or self.pool, snippets=snippets,
                                         softmax_ranks=ranks, progress=self.options.trace_progress)
        problem = options.cache.save() if options.cache else None
        return LayerOutput(raw=diagnostics, notes=notes + ([problem] if problem else []), snippets=snippets,
                           softmax_ranks=ranks)
