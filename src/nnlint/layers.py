"""The layers behind one interface: each names the codes it can report and runs over the checked files.

`nnlint.api` runs every layer whose codes are enabled somewhere, then settles each file's findings
once (`suppression.settle`). A layer returns findings it has already settled when the file's text is
only at hand inside it (the static layer's worker processes); the others come back raw.
"""

from __future__ import annotations

import os
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

    @property
    def codes(self) -> frozenset[str]:
        return _codes_of("trace")

    def run(self, files: list[FileTask], selection: RuleSelection) -> LayerOutput:
        from nnlint.trace.options import trace_options
        from nnlint.trace.runner import trace_files

        # Every file goes to discovery, enabled or not: a model's base class may live in another file;
        # but not one above max-file-size (the static layer notes it) or one Python cannot compile.
        diagnostics, notes = trace_files([(f.path, f.display) for f in files
                                          if not f.max_bytes or _size(f.path) <= f.max_bytes],
                                         trace_options(selection.project_settings(), self.options))
        return LayerOutput(raw=diagnostics, notes=notes)
