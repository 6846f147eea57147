"""`nnlint run` in the nnlint process: start the bounded child, read its result, make diagnostics.

Never imports torch. The child (bootstrap.py) runs in its own session with stdin closed and its address
space capped; past its time plus a grace period the whole process group is killed, and it is killed
after a normal end too, so no DataLoader worker of the user's outlives the command.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from nnlint.check import display_path
from nnlint.config import ConfigError, Settings
from nnlint.diagnostics import Diagnostic, Severity
from nnlint.registry import registry
from nnlint.report import Summary
from nnlint.selection import RuleSelection
from nnlint.suppression import settle

STARTUP_GRACE = 180.0  # importing torch on a cold, shared disk; not charged to --time
OVERFIT_FALL = 0.9
BASELINE_MARGIN = 0.97  # the real run must end at least 3% below the zeroed-input copy
_RUN_KEYS = {"steps": int, "time": float, "memory": str, "overfit-steps": int}


@dataclass
class RunOptions:
    script: str | None = None
    module: str | None = None
    args: list[str] = field(default_factory=list)
    steps: int | None = None
    time: float | None = None
    memory: int | None = None
    overfit: bool = False
    overfit_steps: int | None = None
    baseline: bool = False
    quiet: bool = False
    stdout_to_stderr: bool = False  # keep machine-readable reports on stdout clean
    select: list[str] | None = None
    ignore: list[str] | None = None
    config: str | None = None


@dataclass
class RunOutcome:
    diagnostics: list[Diagnostic]
    summary: Summary
    fail_on: Severity | None
    notes: list[str]
    series: dict
    steps: int


def _settings_table(settings: Settings | None) -> dict:
    table = getattr(settings, "run", None) or {}
    for key, value in table.items():
        if key not in _RUN_KEYS:
            raise ConfigError(f"unknown key '{key}' in [tool.nnlint.run]")
        if _RUN_KEYS[key] is not str and not isinstance(value, (int, float)):
            raise ConfigError(f"'{key}' in [tool.nnlint.run] must be a number")
    return table


def _resolve(options: RunOptions, settings: Settings | None) -> None:
    from nnlint.trace.options import parse_memory

    table = _settings_table(settings)
    options.steps = options.steps or int(table.get("steps", 20))
    options.time = options.time or float(table.get("time", 120))
    options.overfit_steps = options.overfit_steps or int(table.get("overfit-steps", 100))
    if options.memory is None:
        options.memory = parse_memory(table.get("memory", "8G"))
    if options.steps < 1 or options.time <= 0:
        raise ConfigError("--steps and --time must be positive")


def _module_path(module: str) -> str:
    sys.path.insert(0, os.getcwd())
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        spec = None
    finally:
        sys.path.pop(0)
    if spec is None or not spec.origin or not os.path.isfile(spec.origin):
        raise ConfigError(f"module not found: {module}")
    if spec.submodule_search_locations:  # a package runs its __main__
        main = os.path.join(os.path.dirname(spec.origin), "__main__.py")
        return main if os.path.isfile(main) else spec.origin
    return spec.origin


class _Child:
    """One bounded run of the bootstrap."""

    def __init__(self, options: RunOptions, mode: str, steps: int):
        self.options, self.mode, self.steps = options, mode, steps

    def run(self) -> dict:
        with tempfile.TemporaryDirectory(prefix="nnlint-run-") as folder:
            request_path, result_path = os.path.join(folder, "request.json"), os.path.join(folder, "result.json")
            request = {"script": self.options.script, "module": self.options.module, "args": self.options.args,
                       "steps": self.steps, "time": self.options.time, "mode": self.mode,
                       "memory": self.options.memory, "result": result_path}
            with open(request_path, "w", encoding="utf-8") as handle:
                json.dump(request, handle)
            log = tempfile.TemporaryFile(dir=folder)
            quiet = self.options.quiet or self.mode != "run"
            stdout = log if quiet else (sys.stderr if self.options.stdout_to_stderr else None)
            env = dict(os.environ)
            src = str(Path(__file__).resolve().parents[2])
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [src, env.get("PYTHONPATH")]))
            env.setdefault("PYTHONUNBUFFERED", "1")
            process = subprocess.Popen(
                [sys.executable, "-m", "nnlint.run.bootstrap", request_path],
                stdin=subprocess.DEVNULL, stdout=stdout, stderr=log if quiet else None, env=env,
                start_new_session=True)
            limit = self.options.time + STARTUP_GRACE
            try:
                code = process.wait(timeout=limit)
                killed = False
            except subprocess.TimeoutExpired:
                code, killed = None, True
            finally:
                _kill_group(process)
            try:
                with open(result_path, encoding="utf-8") as handle:
                    result = json.load(handle)
            except (OSError, ValueError):
                result = {"steps": 0, "findings": [], "notes": [], "series": {}}
                result["crash"] = {"kind": "killed", "site": None, "message": self._death(code, killed, log)}
            crash = result.get("crash")
            if crash and crash.get("kind") == "exit" and quiet:  # e.g. argparse's complaint
                crash["message"] += f": {_last_line(log)}"
            log.close()
            return result

    def _death(self, code: int | None, killed: bool, log) -> str:
        if killed:
            return (f"timed out: did not stop within {self.options.time:g} s (+{STARTUP_GRACE:g} s to start); "
                    "raise --time or make the first steps cheaper")
        if code is not None and code < 0:
            name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else str(-code)
            if name == "SIGKILL":
                return "was killed (SIGKILL): out of memory? Lower the batch or model size for the check"
            return f"died of {name}"
        return f"ended without a result (exit status {code}) {_last_line(log)}".strip()


def _last_line(log) -> str:
    log.seek(0)
    lines = log.read().decode("utf-8", "replace").strip().splitlines()
    return lines[-1][:120] if lines else ""


def _kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    process.wait()


class _Diagnostics:
    """Findings at user source lines, settled per file as `check` settles them (enabled codes, noqa)."""

    def __init__(self, selection: RuleSelection, fallback: str):
        self.selection = selection
        self.fallback = fallback
        self.raw: dict[str, list[Diagnostic]] = {}
        self._lines: dict[str, list[str]] = {}

    def add(self, code: str, message: str, where, severity: str | None = None) -> None:
        rule = registry()[code]
        path, line, column, end_line, end_column = where if where else (self.fallback, 1, 1, 1, 1)
        if not os.path.isfile(path):
            path, line, column, end_line, end_column = self.fallback, 1, 1, 1, 1
        text = self._line(path, line)
        if end_column <= column:  # the whole line, from its first character
            column = len(text) - len(text.lstrip()) + 1
            end_column = len(text.rstrip()) + 1
        level = Severity.parse(severity) if severity else rule.severity
        self.raw.setdefault(path, []).append(Diagnostic(
            code, rule.name, message, display_path(path), line, column, end_line, end_column, level, "run", text))

    def settled(self) -> tuple[list[Diagnostic], list[Diagnostic]]:
        found: list[Diagnostic] = []
        suppressed: list[Diagnostic] = []
        for path, diagnostics in self.raw.items():
            result = settle(diagnostics, self.selection.for_path(Path(path)), self._lines.get(path, []))
            found += result.diagnostics
            suppressed += result.suppressed
        return sorted(found, key=Diagnostic.sort_key), suppressed

    def _line(self, path: str, line: int) -> str:
        if path not in self._lines:
            try:
                self._lines[path] = Path(path).read_text(encoding="utf-8", errors="replace").split("\n")
            except OSError:
                self._lines[path] = []
        lines = self._lines[path]
        return lines[line - 1].rstrip("\r") if 0 < line <= len(lines) else ""


def _settled(losses: list[float], count: int = 5) -> float:
    tail = [v for v in losses[-count:] if math.isfinite(v)]
    return min(tail) if tail else math.nan


def run_script(options: RunOptions) -> RunOutcome:
    started = time.perf_counter()
    if options.module:
        target = _module_path(options.module)
    else:
        target = options.script
        if not target or not os.path.isfile(target):
            raise ConfigError(f"script not found: {target}")
    selection = RuleSelection(select=options.select, ignore=options.ignore, config=options.config)
    project = selection.project_settings()
    _resolve(options, project)
    out = _Diagnostics(selection, os.path.abspath(target))
    notes: list[str] = []

    result = _Child(options, "run", options.steps).run()
    for finding in result.get("findings", []):
        out.add(finding["code"], finding["message"], finding["site"], finding.get("severity"))
    crash = result.get("crash")
    if crash:
        out.add("NNL890", f"the script {crash['message']}" if not crash["message"].startswith("the script")
                else crash["message"], crash.get("site"))
    notes += result.get("notes", [])
    steps = result.get("steps", 0)
    notes.append(f"watched {steps} optimizer step{'s' * (steps != 1)} in {result.get('seconds', 0):.1f} s "
                 f"(stopped: {result.get('stop') or 'crash'})")
    if steps and not crash:
        if options.overfit:
            notes.append(_overfit(options, result, out))
        if options.baseline:
            notes.append(_baseline(options, result, out))
    elif steps == 0 and not crash:
        notes.append("no optimizer step happened: nothing to judge on the training curve")

    diagnostics, suppressed = out.settled()
    summary = Summary(files_checked=1, elapsed=time.perf_counter() - started, suppressed=suppressed)
    return RunOutcome(diagnostics, summary, project.fail_on if project else None, notes,
                      result.get("series", {}), steps)


def _overfit(options: RunOptions, main: dict, out: _Diagnostics) -> str:
    started = time.perf_counter()
    result = _Child(options, "overfit", options.overfit_steps).run()
    cost = time.perf_counter() - started
    losses = result.get("series", {}).get("loss", [])
    if result.get("crash") or len(losses) < 10:
        return f"--overfit could not judge ({len(losses)} steps ran; {(result.get('crash') or {}).get('message', '')})"
    first, last = losses[0], _settled(losses)
    where = main.get("loss_site")
    if not math.isfinite(last):
        out.add("NNL806", f"trained on its first batch only, the loss became non-finite within {len(losses)} steps: "
                "the learning rate is too high or the loss unstable", where)
    elif first > 0 and (first - last) / first < OVERFIT_FALL:
        out.add("NNL806", f"trained {len(losses)} steps on its first batch only, the loss fell from {first:.4g} to "
                f"{last:.4g} ({(first - last) / first:.0%}, want >= 90%): check that gradients reach the step, the "
                "loss sign and the learning rate", where)
    return f"--overfit: {len(losses)} steps on the first batch, loss {first:.4g} -> {last:.4g}; extra cost {cost:.1f} s"


def _baseline(options: RunOptions, main: dict, out: _Diagnostics) -> str:
    started = time.perf_counter()
    real = main.get("series", {}).get("loss", [])
    result = _Child(options, "baseline", max(1, main.get("steps", 0))).run()
    cost = time.perf_counter() - started
    zeroed = result.get("series", {}).get("loss", [])
    if result.get("crash") or len(zeroed) < 5 or len(real) < 5:
        return f"--baseline could not judge ({len(zeroed)} steps ran)"
    real_end, zero_end = _settled(real, 3), _settled(zeroed, 3)
    if math.isfinite(real_end) and math.isfinite(zero_end) and zero_end > 0 and real_end >= BASELINE_MARGIN * zero_end:
        out.add("NNL807", f"with its input zeroed the model reaches loss {zero_end:.4g}, the real run {real_end:.4g} "
                f"after {len(real)} steps: it ignores its input (or labels are misaligned or leak); check the data "
                "pipeline and forward", main.get("model_site"))
    return f"--baseline: zeroed-input copy {zero_end:.4g} vs real {real_end:.4g}; extra cost {cost:.1f} s"
