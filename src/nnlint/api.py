"""The functions every front end calls: the CLI, the pre-commit hooks, a language server, notebooks.

    from nnlint.api import lint_source, check_paths

    diagnostics = lint_source(text, "train.py")          # unsaved text, static layer
    outcome = check_paths(["src/"], CheckOptions([]))    # files on disk, every enabled layer

Both return `nnlint.diagnostics.Diagnostic` objects, settled (enabled codes only, noqa applied,
line text attached) and sorted; a diagnostic's `fix` says how to repair it when the rule can.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from nnlint.check import CheckOptions, CheckOutcome, run_check
from nnlint.config import Settings
from nnlint.diagnostics import Diagnostic
from nnlint.engine import lint_text
from nnlint.reparse import Reparser
from nnlint.selection import RuleSelection

__all__ = ["CheckOptions", "CheckOutcome", "Reparser", "RuleSelection", "check_paths", "lint_source"]


def lint_source(text: str, path: str, settings: Settings | None = None,
                selection: RuleSelection | None = None, reparser: Reparser | None = None) -> list[Diagnostic]:
    """The static findings for `text` as if it were the file at `path` (which need not exist).

    Codes are selected as `nnlint check` would for `path`: from `settings` when given, else from the
    nearest pyproject.toml above `path`. Pass a `selection` to reuse one across calls (a server's
    documents), and a `reparser` to check successive versions of one text faster (an editor's buffer).
    Tracing needs the file on disk and a worker process: use `check_paths` for it.
    """
    selection = selection or RuleSelection(settings=settings)
    found = lint_text(text, path, selection.for_path(Path(path)), reparser=reparser).diagnostics
    return sorted(found, key=Diagnostic.sort_key)


def check_paths(paths: list[str], options: CheckOptions | None = None,
                progress: Callable[[int], Callable[[], None] | None] | None = None) -> CheckOutcome:
    """What `nnlint check PATHS` reports: every enabled layer over the files under `paths`.

    Raises `nnlint.config.ConfigError` for a bad configuration or a path that does not exist.
    """
    options = options or CheckOptions(paths=[])
    options.paths = list(paths) or ["."]
    return run_check(options, progress)
