"""`[tool.nnlint]` configuration: finding it, validating it, and turning it into enabled codes per file."""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field
from pathlib import Path

from nnlint.diagnostics import Severity


class ConfigError(Exception):
    """Bad configuration or usage: the CLI prints it on one line and exits 2."""


_TOP_KEYS = {"select", "ignore", "per-file-ignores", "exclude", "fail-on", "max-file-size", "trace", "models", "run"}
_SIZE_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
DEFAULT_MAX_FILE_SIZE = 2 * 1024**2  # a hand-written module is rarely above 200 KB; generated ones stall a commit
_TRACE_KEYS = {"timeout", "memory", "fake-threshold", "batch-size"}
_MODEL_KEYS = {"args", "kwargs", "input"}
_RUN_KEYS = {"steps", "time", "memory", "overfit-steps"}


@dataclass
class Settings:
    root: Path  # the directory patterns in the file are relative to
    source: str | None = None  # the config file, for messages
    select: list[str] | None = None
    ignore: list[str] = field(default_factory=list)
    per_file_ignores: dict[str, list[str]] = field(default_factory=dict)
    exclude: list[str] = field(default_factory=list)
    fail_on: Severity | None = None
    max_file_size: int | None = None  # bytes; 0 = no limit
    trace: dict = field(default_factory=dict)
    models: dict[str, dict] = field(default_factory=dict)
    run: dict = field(default_factory=dict)
    _specs: dict = field(default_factory=dict, repr=False)

    def _spec(self, patterns: tuple[str, ...]):
        spec = self._specs.get(patterns)
        if spec is None:
            import pathspec

            spec = self._specs[patterns] = pathspec.GitIgnoreSpec.from_lines(patterns)
        return spec

    def relative(self, path: Path) -> str | None:
        try:
            return path.resolve().relative_to(self.root.resolve()).as_posix()
        except ValueError:
            return None

    def is_excluded(self, path: Path) -> bool:
        if not self.exclude:
            return False
        rel = self.relative(path)
        return rel is not None and self._spec(tuple(self.exclude)).match_file(rel)

    def ignored_for(self, path: Path) -> set[str]:
        codes: set[str] = set()
        rel = self.relative(path) if self.per_file_ignores else None
        if rel is None:
            return codes
        for pattern, pattern_codes in self.per_file_ignores.items():
            if self._spec((pattern,)).match_file(rel):
                codes.update(pattern_codes)
        return codes


def _unknown_key(keys, allowed: set[str], table: str, where: str) -> None:
    unknown = sorted(set(keys) - allowed)
    if unknown:
        close = difflib.get_close_matches(unknown[0], sorted(allowed), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else f"; known keys: {', '.join(sorted(allowed))}"
        raise ConfigError(f"unknown key '{unknown[0]}' in {table} of {where}{hint}")


def expand_codes(specs: list[str], known: list[str], where: str) -> set[str]:
    """Codes and prefixes (`NNL3`) to the set of known codes they name; unknown ones are an error."""
    codes: set[str] = set()
    for spec in specs:
        spec = spec.strip().upper()
        if not spec:
            continue
        matched = [code for code in known if code.startswith(spec)]
        if not matched:
            raise ConfigError(f"unknown rule code or prefix {spec!r} in {where}")
        codes.update(matched)
    return codes


def _load_toml(path: Path) -> dict:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"invalid TOML in {path}: {exc}") from None


def _string_list(value, key: str, where: str) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"'{key}' in {where} must be a list of strings")
    return value


def parse_settings(table: dict, root: Path, where: str, known: list[str]) -> Settings:
    _unknown_key(table, _TOP_KEYS, "[tool.nnlint]", where)
    settings = Settings(root=root, source=where)
    if "select" in table:
        settings.select = _string_list(table["select"], "select", where)
        expand_codes(settings.select, known, f"'select' of {where}")
    settings.ignore = _string_list(table.get("ignore", []), "ignore", where)
    expand_codes(settings.ignore, known, f"'ignore' of {where}")
    settings.exclude = _string_list(table.get("exclude", []), "exclude", where)
    per_file = table.get("per-file-ignores", {})
    if not isinstance(per_file, dict):
        raise ConfigError(f"'per-file-ignores' in {where} must be a table of glob = [codes]")
    for pattern, codes in per_file.items():
        codes = _string_list(codes, f"per-file-ignores.{pattern}", where)
        settings.per_file_ignores[pattern] = sorted(expand_codes(codes, known, f"'per-file-ignores' of {where}"))
    if "fail-on" in table:
        try:
            settings.fail_on = Severity.parse(str(table["fail-on"]))
        except ValueError as exc:
            raise ConfigError(f"'fail-on' in {where}: {exc}") from None
    if "max-file-size" in table:
        settings.max_file_size = parse_size(table["max-file-size"], f"'max-file-size' in {where}")
    trace = table.get("trace", {})
    if not isinstance(trace, dict):
        raise ConfigError(f"'trace' in {where} must be a table")
    _unknown_key(trace, _TRACE_KEYS, "[tool.nnlint.trace]", where)
    settings.trace = trace
    models = table.get("models", {})
    if not isinstance(models, dict):
        raise ConfigError(f"'models' in {where} must be a table of model tables")
    for model, entry in models.items():
        if not isinstance(entry, dict):
            raise ConfigError(f"[tool.nnlint.models.\"{model}\"] in {where} must be a table")
        _unknown_key(entry, _MODEL_KEYS, f"[tool.nnlint.models.\"{model}\"]", where)
    settings.models = models
    run = table.get("run", {})
    unknown = sorted(set(run) - _RUN_KEYS) if isinstance(run, dict) else ["run"]
    if unknown:
        raise ConfigError(f"unknown key '{unknown[0]}' in [tool.nnlint.run] of {where}")
    settings.run = run
    return settings


def parse_size(value, where: str) -> int:
    """Bytes from an int or a string such as "2MB", "500K", "1.5M" (0: no limit)."""
    if isinstance(value, bool):
        raise ConfigError(f"{where} must be a size such as 2MB or 500KB")
    if isinstance(value, int) and value >= 0:
        return value
    text = str(value).strip().lower().removesuffix("ib").removesuffix("b").strip()
    unit = text[-1:] if text[-1:] in _SIZE_UNITS else ""
    try:
        size = float(text.removesuffix(unit)) * _SIZE_UNITS[unit]
    except ValueError:
        raise ConfigError(f"{where} must be a size such as 2MB or 500KB, not {value!r}") from None
    if size < 0:
        raise ConfigError(f"{where} must not be negative")
    return int(size)


def load_file(path: Path, known: list[str]) -> Settings:
    """An explicit --config file: a pyproject.toml with [tool.nnlint], or a file of bare nnlint keys."""
    data = _load_toml(path)
    if path.name == "pyproject.toml" or {"tool", "project", "build-system"} & set(data):
        table = data.get("tool", {}).get("nnlint")
        if not isinstance(table, dict):
            raise ConfigError(f"--config {path} has no [tool.nnlint] table: add one, or point --config at another file")
    else:
        table = data
    return parse_settings(table, path.parent.resolve(), str(path), known)


def _mentions_nnlint(path: str) -> bool:
    """Most pyproject.toml files have no nnlint table: skip importing and running a TOML parser for them."""
    try:
        with open(path, "rb") as handle:
            return b"nnlint" in handle.read()
    except OSError:
        return True  # let the parser report it


class ConfigFinder:
    """Nearest pyproject.toml with a [tool.nnlint] table above each directory, cached."""

    def __init__(self, known: list[str]):
        self.known = known
        self._by_dir: dict[str, Settings | None] = {}

    def for_path(self, path: Path) -> Settings | None:
        directory = os.path.dirname(os.path.abspath(path)) if not path.is_dir() else os.path.abspath(path)
        return self._for_dir(directory)

    def _for_dir(self, directory: str) -> Settings | None:
        if directory in self._by_dir:
            return self._by_dir[directory]
        settings = None
        candidate = os.path.join(directory, "pyproject.toml")
        if os.path.isfile(candidate) and _mentions_nnlint(candidate):
            data = _load_toml(Path(candidate))
            table = data.get("tool", {}).get("nnlint")
            if table is not None:
                settings = parse_settings(table, Path(directory), candidate, self.known)
        if settings is None:
            parent = os.path.dirname(directory)
            settings = self._for_dir(parent) if parent != directory else None
        self._by_dir[directory] = settings
        return settings
