"""The command line: option parsing and output only; the work happens behind nnlint.api and in the reporters."""

from __future__ import annotations

import os
import sys
from collections import Counter

import click

from nnlint import __version__
from nnlint.config import ConfigError
from nnlint.diagnostics import Severity
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


def _fail(message: str) -> None:
    click.echo(f"nnlint: error: {message}", err=True)
    sys.exit(2)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="nnlint")
def main() -> None:
    """nnlint: find the bugs in PyTorch training code that train badly instead of crashing."""


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
def check(paths, select, ignore, fmt, output_file, fail_on, exit_zero, statistics, static_only, fake,
          trace_timeout, config, jobs, max_file_size, verbose, quiet) -> None:
    """Check PATHS (files or folders; default: the current folder)."""
    from nnlint.api import CheckOptions, check_paths
    from nnlint.config import parse_size

    if select is not None and not _codes(select):
        _fail("--select needs at least one code or prefix (e.g. --select NNL1,NNL302)")
    if output_file:
        _check_writable(output_file)
    progress = None if quiet or fmt != "text" else _progress
    try:
        options = CheckOptions(
            paths=[], select=_codes(select), ignore=_codes(ignore), config=config,
            static_only=static_only, fake=fake, trace_timeout=trace_timeout, verbose=verbose, jobs=jobs,
            max_file_size=parse_size(max_file_size, "--max-file-size") if max_file_size is not None else None,
        )
        outcome = check_paths(list(paths), options, progress)
    except ConfigError as exc:
        _fail(str(exc))
    for note in outcome.notes if not quiet else ():
        click.echo(f"nnlint: {note}", err=True)

    to_terminal = output_file is None and sys.stdout.isatty()
    report = render(fmt, outcome.diagnostics, outcome.summary, color=to_terminal)
    if quiet and fmt == "text":
        report = report.rsplit("\n", 2)[0] + "\n" if outcome.diagnostics else ""
    if output_file:
        _write_report(output_file, report)
    else:
        click.echo(report, nl=False)
    if statistics:
        click.echo(_statistics(outcome), nl=False, err=fmt not in ("text", "concise") and not output_file)

    if outcome.internal_error:
        sys.exit(2)
    threshold = Severity.parse(fail_on) if fail_on else (outcome.fail_on or Severity.WARNING)
    failed = any(d.severity >= threshold for d in outcome.diagnostics)
    sys.exit(1 if failed and not exit_zero else 0)


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
