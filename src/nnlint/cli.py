"""The command line: option parsing and output only; the work happens behind nnlint.api and in the reporters."""

from __future__ import annotations

import difflib
import os
import sys
from collections import Counter
from typing import NoReturn

import click

from nnlint import __version__
from nnlint.config import ConfigError
from nnlint.diagnostics import Applicability, Diagnostic, Severity
from nnlint.report import FORMATS, render

_SEVERITIES = click.Choice(["error", "warning", "info"], case_sensitive=False)


def _codes(value: str | None) -> list[str] | None:
    if value is None:
        return None
    return [c for c in value.replace(" ", ",").split(",") if c]


def _check_writable(path: str) -> None:
    """Refuse a report path that cannot be written before spending the run on it."""
    parent = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        _fail(f"cannot write the report to {path}: it is a directory")
    if not os.path.isdir(parent):
        _fail(f"cannot write the report to {path}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK) or (os.path.exists(path) and not os.access(path, os.W_OK)):
        _fail(f"cannot write the report to {path}: permission denied")


def _write_report(path: str, report: str) -> None:
    try:
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(report)
    except OSError as exc:
        _fail(f"cannot write the report to {path}: {exc.strerror or exc}")


def _fail(message: str) -> NoReturn:
    click.echo(f"nnlint: error: {message}", err=True)
    sys.exit(2)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="nnlint")
def main() -> None:
    """nnlint: find the bugs in PyTorch training code that train badly instead of crashing."""


def _early_worker(paths, select: str | None, static_only: bool):
    """Start a trace worker before anything else when this run may trace: its `import torch` then
    overlaps nnlint's own imports and static pass (one small file: ~1.1x `import torch` instead of 1.6x)."""
    import importlib.util

    codes = [c.upper() for c in _codes(select) or ["NNL7"]]
    if static_only or list(paths) == ["-"] or not any("NNL7".startswith(c) or c.startswith("NNL7") for c in codes):
        return None
    if importlib.util.find_spec("torch") is None:
        return None
    from nnlint.trace.workers import EarlyWorker

    return EarlyWorker()


def _progress(total: int):
    if total <= 40 or not sys.stderr.isatty():
        return None
    from rich.console import Console
    from rich.progress import Progress

    bar = Progress(console=Console(stderr=True), transient=True)
    bar.start()
    task = bar.add_task("checking", total=total)

    def advance() -> None:
        bar.advance(task)
        if bar.finished:
            bar.stop()

    return advance


class _TraceProgress:
    """A rich progress bar for tracing on stderr: files and models done, the current file."""

    def __init__(self):
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn

        self.bar = Progress(TextColumn("tracing"), BarColumn(), TextColumn("{task.completed}/{task.total} files"),
                            TextColumn("{task.fields[models]}"), TextColumn("{task.fields[current]}"),
                            console=Console(stderr=True), transient=True)
        self.task = None

    def __call__(self, files_done, files, models_done, models, current) -> None:
        if self.task is None:
            self.bar.start()
            self.task = self.bar.add_task("tracing", total=files, models="", current="")
        self.bar.update(self.task, completed=files_done, models=f"{models_done}/{models} models",
                        current=current)
        if files_done == files:
            self.stop()

    def stop(self) -> None:
        if self.task is not None and self.bar.live.is_started:
            self.bar.stop()


def _fix_list(changes, verb: str) -> str:
    if not changes:
        return "nnlint: nothing to fix\n"
    count = sum(len(c.applied) for c in changes)
    rows = [f"nnlint: {verb} {count} problem{'s' if count != 1 else ''}:"]
    for change in changes:
        for d in sorted(change.applied, key=Diagnostic.sort_key):
            if d.fix is not None:
                where = f"{change.display}:{d.line}:{d.column}"
                rows.append(f"  {where}: {d.code} {d.fix.message} ({d.fix.applicability.value})")
    return "\n".join(rows) + "\n"


def _statistics(outcome) -> str:
    found = Counter(d.code for d in outcome.diagnostics)
    hidden = Counter(d.code for d in outcome.summary.suppressed)
    names = {d.code: d.name for d in outcome.diagnostics + outcome.summary.suppressed}
    rows = [f"{'code':<8}{'count':>7}{'noqa':>7}  name"]
    for code in sorted(set(found) | set(hidden)):
        rows.append(f"{code:<8}{found[code]:>7}{hidden[code]:>7}  {names[code]}")
    return "\n".join(rows) + "\n"


@main.command()
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--select", help="Only these codes or prefixes (e.g. NNL101,NNL3).")
@click.option("--ignore", help="Skip these codes or prefixes.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True)
@click.option("--output-file", "-o", type=click.Path(dir_okay=False), help="Write the report here.")
@click.option("--fail-on", type=_SEVERITIES, help="Lowest severity that fails the run [default: warning].")
@click.option("--exit-zero", is_flag=True, help="Exit 0 even when problems are found.")
@click.option("--statistics", is_flag=True, help="Count findings per code, including suppressed ones.")
@click.option("--static-only", is_flag=True, help="Only read the source; do not trace models.")
@click.option("--fake", is_flag=True, help="Trace every model with fake tensors (no real memory or compute).")
@click.option("--trace-timeout", type=float, help="Seconds allowed to trace one file [default: 30].")
@click.option("--config", type=click.Path(dir_okay=False), help="Config file (default: nearest pyproject.toml).")
@click.option("--jobs", "-j", type=click.IntRange(min=1), help="Worker processes [default: all cores].")
@click.option("--max-file-size", help="Skip larger files with an NNL005 note, e.g. 5MB; 0: no limit [default: 2MB].")
@click.option("--verbose", "-v", is_flag=True, help="Say which tracing path each model took and why.")
@click.option("--quiet", "-q", is_flag=True, help="Print findings only: no summary or notes.")
@click.option("--fix", is_flag=True, help="Apply safe fixes, then report what remains.")
@click.option("--unsafe-fixes", is_flag=True, help="With --fix or --diff: apply unsafe fixes too.")
@click.option("--diff", is_flag=True, help="Print the fixes as a unified diff and write nothing (exit 1 if any).")
@click.option("--show-fixes", is_flag=True, help="List the fixes applied (or, with --diff, that would be).")
@click.option("--stdin-filename", help="With `-`: the path the source on stdin stands for (config, reports).")
@click.option("--no-cache", is_flag=True, help="Neither read nor write the results cache.")
@click.option("--cache-dir", type=click.Path(file_okay=False), help="Results cache folder [default: .nnlint_cache].")
def check(paths, select, ignore, fmt, output_file, fail_on, exit_zero, statistics, static_only, fake,
          trace_timeout, config, jobs, max_file_size, verbose, quiet, fix, unsafe_fixes, diff, show_fixes,
          stdin_filename, no_cache,
          cache_dir) -> None:
    """Check PATHS (files or folders; default: the current folder; `-`: standard input)."""
    if select is not None and not _codes(select):
        _fail("--select needs at least one code or prefix (e.g. --select NNL1,NNL302)")
    if output_file:
        _check_writable(output_file)
    if stdin_filename and list(paths) != ["-"]:
        _fail("--stdin-filename only applies when reading standard input (pass `-` as the path)")
    if unsafe_fixes and not (fix or diff):
        _fail("--unsafe-fixes applies with --fix or --diff")
    early = _early_worker(paths, select, static_only or diff)
    if early is not None:
        click.get_current_context().call_on_close(early.discard)  # however the command ends
    from nnlint.api import CheckOptions, check_paths
    from nnlint.config import parse_size

    stdin = sys.stdin.buffer.read() if list(paths) == ["-"] else None
    levels = {Applicability.SAFE, Applicability.UNSAFE} if unsafe_fixes else {Applicability.SAFE}
    progress = None if quiet or fmt != "text" else _progress
    # Only on a terminal: nothing extra in CI logs or pipes.
    tracing = _TraceProgress() if progress is not None and not static_only and sys.stderr.isatty() else None
    try:
        options = CheckOptions(
            paths=[], select=_codes(select), ignore=_codes(ignore), config=config,
            static_only=static_only or diff, fake=fake, trace_timeout=trace_timeout, verbose=verbose, jobs=jobs,
            fix=frozenset(levels) if fix or diff else frozenset(), diff=diff,
            stdin=stdin, stdin_filename=stdin_filename, cache=not no_cache, cache_dir=cache_dir,
            max_file_size=parse_size(max_file_size, "--max-file-size") if max_file_size is not None else None,
            early_worker=early,
        )
        options.trace_progress = tracing
        outcome = check_paths(list(paths), options, progress)
    except ConfigError as exc:
        _fail(str(exc))
    finally:
        if tracing is not None:
            tracing.stop()
    for note in outcome.notes if not quiet else ():
        click.echo(f"nnlint: {note}", err=True)
    if show_fixes:
        click.echo(_fix_list(outcome.changes, "would fix" if diff else "fixed"), nl=False, err=True)
    if diff:
        for change in outcome.changes:
            click.echo("".join(difflib.unified_diff(change.before.splitlines(keepends=True),
                                                    change.after.splitlines(keepends=True),
                                                    f"a/{change.display}", f"b/{change.display}")), nl=False)
        sys.exit(2 if outcome.internal_error else 1 if outcome.changes else 0)
    if fix and stdin is not None:  # as Ruff does: the fixed source on stdout, the findings on stderr
        click.echo(outcome.changes[0].after if outcome.changes else stdin.decode("utf-8", "replace"), nl=False)

    to_terminal = output_file is None and sys.stdout.isatty()
    report = render(fmt, outcome.diagnostics, outcome.summary, color=to_terminal)
    if quiet and fmt == "text":
        report = report.rsplit("\n", 2)[0] + "\n" if outcome.diagnostics else ""
    if output_file:
        _write_report(output_file, report)
    else:
        click.echo(report, nl=False, err=bool(fix and stdin is not None))
    if statistics:
        click.echo(_statistics(outcome), nl=False, err=fmt not in ("text", "concise") and not output_file)
    if outcome.snippets and not quiet and (fmt == "text" or verbose):
        # After the report, never inside a message: machine formats get it on stderr.
        text = "To trace the models NNL790 names, add to pyproject.toml (real values):\n\n"
        click.echo(text + "\n\n".join(outcome.snippets), err=fmt != "text" or bool(output_file))

    if fix and not quiet and not show_fixes and outcome.changes:
        count = sum(len(c.applied) for c in outcome.changes)
        click.echo(f"nnlint: fixed {count} problem{'s' if count != 1 else ''} in {len(outcome.changes)} "
                   f"file{'s' if len(outcome.changes) != 1 else ''}", err=True)
    if outcome.internal_error or outcome.failed_writes:
        sys.exit(2)
    threshold = Severity.parse(fail_on) if fail_on else (outcome.fail_on or Severity.WARNING)
    failed = any(d.severity >= threshold for d in outcome.diagnostics)
    sys.exit(1 if failed and not exit_zero else 0)


@main.command("run", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.argument("script", required=False)
@click.argument("script_args", nargs=-1, type=click.UNPROCESSED)
@click.option("-m", "module", help="Run a module as `python -m MODULE` would, instead of SCRIPT.")
@click.option("--steps", type=click.IntRange(min=1), help="Stop after this many optimizer steps [default: 20].")
@click.option("--time", "seconds", type=click.FloatRange(min=0, min_open=True),
              help="Stop this many seconds after the script starts [default: 120].")
@click.option("--overfit", is_flag=True, help="Also train a fresh run on the first batch only (NNL806).")
@click.option("--overfit-steps", type=click.IntRange(min=10), help="Steps of the --overfit run [default: 100].")
@click.option("--baseline", is_flag=True, help="Also train a fresh run on zeroed inputs (NNL807).")
@click.option("--plot", type=click.Path(dir_okay=False), help="Write a PNG of loss, gradient norms, activations.")
@click.option("--select", help="Only these codes or prefixes (e.g. NNL801,NNL81).")
@click.option("--ignore", help="Skip these codes or prefixes.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True)
@click.option("--output-file", "-o", type=click.Path(dir_okay=False), help="Write the report here.")
@click.option("--fail-on", type=_SEVERITIES, help="Lowest severity that fails the run [default: warning].")
@click.option("--exit-zero", is_flag=True, help="Exit 0 even when problems are found.")
@click.option("--config", type=click.Path(dir_okay=False), help="Config file (default: nearest pyproject.toml).")
@click.option("--quiet", "-q", is_flag=True, help="Capture the script's own output; print findings only.")
def run_command(script, script_args, module, steps, seconds, overfit, overfit_steps, baseline, plot, select, ignore,
                fmt, output_file, fail_on, exit_zero, config, quiet) -> None:
    """Run SCRIPT (your training script, as __main__) with probes for its first steps; report what they saw.

    Arguments after SCRIPT (or after `--`) are passed to the script. It runs in a child process, stopped
    cleanly after --steps optimizer steps or --time seconds.
    """
    from nnlint.run.runner import RunOptions, run_script

    if module and script:
        script_args = (script, *script_args)
        script = None
    if script_args[:1] == ("--",):
        script_args = script_args[1:]
    if bool(module) == bool(script):
        _fail("give a SCRIPT or -m MODULE (one of them)")
    machine = fmt not in ("text", "concise") and output_file is None
    options = RunOptions(script=script, module=module, args=list(script_args), steps=steps, time=seconds,
                         overfit=overfit, overfit_steps=overfit_steps, baseline=baseline, quiet=quiet,
                         stdout_to_stderr=machine, select=_codes(select), ignore=_codes(ignore), config=config)
    try:
        outcome = run_script(options)
    except ConfigError as exc:
        _fail(str(exc))
    for note in outcome.notes if not quiet else ():
        click.echo(f"nnlint: {note}", err=True)

    to_terminal = output_file is None and sys.stdout.isatty()
    report = render(fmt, outcome.diagnostics, outcome.summary, color=to_terminal)
    if quiet and fmt == "text":
        report = report.rsplit("\n", 2)[0] + "\n" if outcome.diagnostics else ""
    elif fmt == "text" and outcome.series.get("loss"):
        from nnlint.run.table import render_table

        report += render_table(outcome.series, color=to_terminal)
    if output_file:
        with open(output_file, "w", encoding="utf-8") as handle:
            handle.write(report)
    else:
        click.echo(report, nl=False)
    if plot:
        from nnlint.run.plot import write_plot

        problem = write_plot(outcome.series, plot)
        if problem:
            click.echo(f"nnlint: {problem}", err=True)
    if outcome.internal_error:
        sys.exit(2)
    threshold = Severity.parse(fail_on) if fail_on else (outcome.fail_on or Severity.WARNING)
    failed = any(d.severity >= threshold for d in outcome.diagnostics)
    sys.exit(1 if failed and not exit_zero else 0)


@main.command("server")
def server_command() -> None:
    """Run the language server (LSP over stdio) for editors: diagnostics as you type, fixes as code actions."""
    try:
        from nnlint.server import serve
    except ImportError as exc:
        _fail(f"`nnlint server` needs the lsp extra ({exc.name} is missing): pip install 'nnlint[lsp]'")
    serve()


@main.command("rule")
@click.argument("code")
def rule_command(code: str) -> None:
    """Print the documentation page of rule CODE."""
    from nnlint.docs import rule_page
    from nnlint.registry import registry

    rule = registry().get(code.upper())
    if rule is None:
        _fail(f"unknown rule {code!r}; `nnlint rules` lists them")
    page = rule_page(rule)
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.markdown import Markdown

        Console().print(Markdown(page))
    else:
        click.echo(page, nl=False)


@main.command("rules")
def rules_command() -> None:
    """List every rule: code, name, severity, layer."""
    from nnlint.registry import registry

    rules = registry()
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.table import Table

        table = Table("code", "name", "severity", "layer", "summary")
        for code, r in rules.items():
            table.add_row(code, r.name, r.severity.label, r.layer, r.summary())
        Console().print(table)
        return
    for code, r in rules.items():
        click.echo(f"{code}  {r.name:<34} {r.severity.label:<8} {r.layer:<7} {r.summary()}")
