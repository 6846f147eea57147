"""Which codes are enabled for a file: settings, then the front end's options over them, then per-file ignores."""

from __future__ import annotations

import os
from pathlib import Path

from nnlint.config import ConfigFinder, Settings, expand_codes, load_file
from nnlint.registry import registry


class RuleSelection:
    """Enabled codes per path, for every front end (CLI, language server, notebooks).

    `config` names a settings file that applies to every path; without it each path gets the nearest
    pyproject.toml with a [tool.nnlint] table. `select` / `ignore` (codes or prefixes) override the
    settings' own lists; `select=None` means "as configured", `ignore=[]` means "ignore nothing".
    """

    def __init__(self, select: list[str] | None = None, ignore: list[str] | None = None,
                 config: str | None = None, settings: Settings | None = None):
        self.known = list(registry())
        self.explicit = settings or (load_file(Path(config), self.known) if config else None)
        self.finder = ConfigFinder(self.known)
        self.cli_select = expand_codes(select, self.known, "--select") if select else None
        self.cli_ignore = expand_codes(ignore, self.known, "--ignore") if ignore is not None else None
        self._cache: dict[tuple, frozenset[str]] = {}

    def settings(self, path: Path) -> Settings | None:
        return self.explicit or self.finder.for_path(path)

    def project_settings(self) -> Settings | None:
        """The settings of the working directory: run-wide options (fail-on, tracing) come from there."""
        return self.explicit or self.finder.for_path(Path(os.getcwd()) / "pyproject.toml")

    def for_path(self, path: str | Path) -> frozenset[str]:
        path = Path(path)
        settings = self.settings(path)
        ignored_here = settings.ignored_for(path) if settings else set()
        key = (id(settings), frozenset(ignored_here))
        if key not in self._cache:
            select = self.cli_select
            if select is None:
                select = expand_codes(settings.select, self.known, "select") if settings and settings.select \
                    else set(self.known)
            ignore = self.cli_ignore
            if ignore is None:
                ignore = expand_codes(settings.ignore, self.known, "ignore") if settings else set()
            self._cache[key] = frozenset(select - ignore - ignored_here)
        return self._cache[key]

    def is_excluded(self, path: str | Path) -> bool:
        settings = self.settings(Path(path))
        return settings is not None and settings.is_excluded(Path(path))
