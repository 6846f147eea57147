"""The layers behind one interface: each names the codes it can report and runs over the checked files.

`nnlint.api` runs every layer whose codes are enabled somewhere, then settles each file's findings
once (`suppression.settle`). A layer returns findings it has already settled when the file's text is
only at hand inside it (the static layer's worker processes); the others come back raw.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from nnlint.diagnostics import Diagnostic
from nnlint.engine import FileTask, lint_files
from nnlint.registry import registry
from nnlint.selection import RuleSelection
from nnlint.suppression import FileResult

if TYPE_CHECKING:
    from nnlint.check import CheckOptions


@dataclass
class LayerOutput:
    settled: list[FileResult] = field(default_factory=list)  # already filtered and noqa'd
    raw: list[Diagnostic] = field(default_factory=list)  # to settle: codes, line text, noqa
    notes: list[str] = field(default_factory=list)  # said on stderr, never part of the report
    snippets: list[str] = field(default_factory=list)  # config tables printed after the report


class Layer(Protocol):
    name: str

    @property
    def codes(self) -> frozenset[str]:
        """Every code this layer can report."""
        ...

    def run(self, files: list[FileTask], selection: RuleSelection) -> LayerOutput:
        """Check the files (each names the codes enabled for it)."""
        ...


def _codes_of(*layers: str) -> frozenset[str]:
    return frozenset(code for code, rule in registry().items() if rule.layer in layers)


class StaticLayer:
    """libcst rules, one walk per file; tool diagnostics (unreadable, unparsable, crashed rule) too."""

    name = "static"

    def __init__(self, jobs: int | None = None, progress: Callable[[], None] | None = None):
        self.jobs = jobs
        self.progress = progress

    @property
    def codes(self) -> frozenset[str]:
        return _codes_of("static", "tool")

    def run(self, files: list[FileTask], selection: RuleSelection) -> LayerOutput:
        return LayerOutput(settled=lint_files(files, self.jobs, self.progress))


class TraceLayer:
    """Builds each nn.Module in a sandboxed worker and checks one forward pass."""

    name = "trace"

    def __init__(self, options: "CheckOptions"):
        self.options = options  # the front end's trace flags: fake, timeout, verbose, jobs
        self.pool = None

    @property
    def codes(self) -> frozenset[str]:
        return _codes_of("trace")

    def prepare(self, files: list[FileTask], selection: RuleSelection) -> None:
        """Start the workers now, so their `import torch` overlaps the static layer: as many as
        files that mention torch, up to --jobs."""
        import importlib.util

        if importlib.util.find_spec("torch") is None:
            return
        from nnlint.trace.options import trace_options
        from nnlint.trace.runner import WorkerPool

        options = trace_options(selection.project_settings(), self.options)
        wanted = 0
        for task in files:
            try:
                with open(task.path, "rb") as handle:
                    wanted += b"torch" in handle.read()
            except OSError:
                continue
            if wanted >= options.jobs:
                break
        if wanted:
            self.pool = WorkerPool(options)
            self.pool.start_early(wanted)

    def run(self, files: list[FileTask], selection: RuleSelection) -> LayerOutput:
        from nnlint.trace.options import trace_options
        from nnlint.trace.runner import trace_files

        snippets: list[str] = []
        # Every file goes to discovery, enabled or not: a model's base class may live in another file.
        diagnostics, notes = trace_files([(f.path, f.display) for f in files],
                                         trace_options(selection.project_settings(), self.options),
                                         pool=self.pool, snippets=snippets, progress=self.options.trace_progress)
        return LayerOutput(raw=diagnostics, notes=notes, snippets=snippets)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.close()
            self.pool = None
