"""Check files: read once, parse once, run every enabled rule in one walk, suppress, collect."""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass, field, replace

import libcst as cst

from nnlint.context import FileContext
from nnlint.diagnostics import Diagnostic
from nnlint.positions import locate
from nnlint.precheck import compile_error
from nnlint.rule import Rule, StaticRule, registry
from nnlint.source import DecodeError, TooLarge, UnreadableFile, decode, read_bytes, too_large_message
from nnlint.suppression import is_suppressed, noqa_problems
from nnlint.tree import children

# Below this many files, starting worker processes costs more than it saves.
PARALLEL_THRESHOLD = 24


@dataclass(frozen=True)
class FileTask:
    path: str  # where to read it
    display: str  # how reports name it
    enabled: frozenset[str]  # codes enabled for this file
    max_bytes: int | None = None  # larger files are skipped with NNL005


@dataclass
class FileResult:
    diagnostics: list[Diagnostic] = field(default_factory=list)
    suppressed: list[Diagnostic] = field(default_factory=list)
    skipped: bool = False  # too large to check: not traced either


def _diagnostic(rule: type[Rule], path: str, line: int, column: int, end_line: int, end_column: int,
                message: str) -> Diagnostic:
    return Diagnostic(rule.code, rule.name, message, path, line, column, end_line, end_column, rule.severity)


def _handlers(rule_type: type[StaticRule]) -> list[tuple[str, str, str]]:
    cached = rule_type.__dict__.get("_handler_cache")
    if cached is None:
        cached = [
            (attr.split("_", 1)[0], attr.split("_", 1)[1], attr)
            for attr in dir(rule_type)
            if attr.startswith(("visit_", "leave_"))
        ]
        rule_type._handler_cache = cached
    return cached


class _Walk:
    """One pass over the tree, calling each rule's visit_/leave_ methods."""

    def __init__(self, ctx: FileContext, rules: list[StaticRule]):
        self.ctx = ctx
        self.rules = rules
        self.crashes: list[tuple[type[Rule], cst.CSTNode, BaseException]] = []
        self._build_dispatch()

    def _build_dispatch(self) -> None:
        self.visits: dict[str, list] = defaultdict(list)
        self.leaves: dict[str, list] = defaultdict(list)
        for rule in self.rules:
            for kind, node_type, attr in _handlers(type(rule)):
                table = self.visits if kind == "visit" else self.leaves
                table[node_type].append((rule, getattr(rule, attr)))

    def _call(self, handlers: list, node: cst.CSTNode) -> None:
        # Rebuilding the dispatch makes new lists, so iterating `handlers` stays safe.
        for rule, handler in handlers:
            try:
                handler(node)
            except Exception as exc:  # a rule bug must not hide the other rules' findings
                self.crashes.append((type(rule), node, exc))
                self.rules.remove(rule)
                self._build_dispatch()

    def run(self) -> None:
        imports = self.ctx.imports
        stack: list[tuple[cst.CSTNode, bool]] = [(self.ctx.module, False)]
        while stack:
            node, leaving = stack.pop()
            type_name = type(node).__name__
            if leaving:
                self._call(self.leaves.get(type_name, ()), node)
                continue
            if type_name in ("Import", "ImportFrom"):
                imports.add(node)
            handlers = self.visits.get(type_name)
            if handlers:
                self._call(handlers, node)
            if type_name in self.leaves:
                stack.append((node, True))
            stack.extend((child, False) for child in reversed(children(node)))


def _static_rules(enabled: frozenset[str]) -> list[type[StaticRule]]:
    return [r for code, r in registry().items() if code in enabled and issubclass(r, StaticRule)]


def _tool_diagnostic(code: str, path: str, message: str, line: int = 1, column: int = 1) -> Diagnostic:
    rule = registry()[code]
    return _diagnostic(rule, path, line, column, line, column + 1, message)


def lint_text(text: str, path: str, enabled: frozenset[str]) -> FileResult:
    """Check source text already decoded. `path` is only used to name the file in diagnostics."""
    rejected = compile_error(text, path)
    if rejected is not None:
        line, column, message = rejected
        return _finish([_tool_diagnostic("NNL001", path, message, line, column)], text, enabled)
    try:
        module = cst.parse_module(text)
    except (cst.ParserSyntaxError, RecursionError, MemoryError, ValueError) as exc:
        detail = exc.message if isinstance(exc, cst.ParserSyntaxError) else f"{type(exc).__name__}: {exc}"
        message = f"libcst cannot parse this file although Python can: {detail}"
        return _finish([_tool_diagnostic("NNL001", path, message)], text, enabled)

    ctx = FileContext(path, module)
    walk = _Walk(ctx, [rule_type(ctx) for rule_type in _static_rules(enabled)])
    try:
        walk.run()
    except RecursionError as exc:  # pragma: no cover - the walk is iterative; rules may recurse
        walk.crashes.append((registry()["NNL003"], module, exc))
    found: list[Diagnostic] = []
    positions = locate(module, [r.node for r in ctx.reports] + [node for _, node, _ in walk.crashes])

    def located(rule: type[Rule], node: cst.CSTNode, message: str) -> Diagnostic:
        line, column, end_line, end_column = positions.get(node, (1, 0, 1, 0))
        return _diagnostic(rule, path, line, column + 1, end_line, end_column + 1, message)

    for report in ctx.reports:
        found.append(located(report.rule, report.node, report.message))
    for rule, node, exc in walk.crashes:
        message = f"rule {rule.code} ({rule.name}) crashed on this file: {type(exc).__name__}: {exc}"
        found.append(located(registry()["NNL003"], node, message))
    return _finish(found, text, enabled, noqa_path=None if walk.crashes else path)


def _finish(found: list[Diagnostic], text: str, enabled: frozenset[str], noqa_path: str | None = None) -> FileResult:
    """Attach line text and apply `# noqa`; with `noqa_path` (every rule walked the file), report noqa codes that do nothing."""
    result = FileResult()
    lines = text.split("\n")
    for diagnostic in found:
        if diagnostic.code not in enabled and diagnostic.code != "NNL003":
            continue
        if diagnostic.line <= len(lines):
            diagnostic = replace(diagnostic, line_text=lines[diagnostic.line - 1].rstrip("\r"))
        if is_suppressed(diagnostic.code, diagnostic.line_text):
            result.suppressed.append(diagnostic)
        else:
            result.diagnostics.append(diagnostic)
    if noqa_path is not None and "NNL004" in enabled and "noqa" in text:
        result.diagnostics += _unused_noqa(noqa_path, lines, result, enabled)
    return result


def _unused_noqa(path: str, lines: list[str], result: FileResult, enabled: frozenset[str]) -> list[Diagnostic]:
    rules = registry()
    used: dict[int, set[str]] = defaultdict(set)
    for diagnostic in result.suppressed:
        used[diagnostic.line].add(diagnostic.code)
    judged = lambda code: code in enabled and rules[code].layer == "static"  # noqa: E731
    found = []
    for problem in noqa_problems(lines, used, rules, judged):
        diagnostic = _diagnostic(rules["NNL004"], path, problem.line, problem.column, problem.line,
                                 problem.end_column, problem.message)
        found.append(replace(diagnostic, line_text=lines[problem.line - 1].rstrip("\r")))
    return [d for d in found if not is_suppressed(d.code, d.line_text)]


def lint_file(task: FileTask) -> FileResult:
    try:
        text = decode(read_bytes(task.path, task.max_bytes))
    except TooLarge as exc:
        result = _finish([_tool_diagnostic("NNL005", task.display, too_large_message(exc.size, task.max_bytes))], "",
                         task.enabled)
        result.skipped = True
        return result
    except UnreadableFile as exc:
        return _finish([_tool_diagnostic("NNL002", task.display, str(exc))], "", task.enabled)
    except DecodeError as exc:
        return _finish([_tool_diagnostic("NNL001", task.display, exc.message, exc.line, exc.column)], "", task.enabled)
    try:
        return lint_text(text, task.display, task.enabled)
    except Exception as exc:  # noqa: BLE001 - a bug on one file must not lose the others
        return _crashed(task, f"raised {type(exc).__name__}: {exc}")


def _crashed(task: FileTask, how: str) -> FileResult:
    message = f"nnlint crashed on this file (the checker {how}); the other files were checked"
    return FileResult([_tool_diagnostic("NNL003", task.display, message[:200])])


def lint_files(tasks: list[FileTask], jobs: int | None = None, progress=None) -> list[FileResult]:
    """Check every file, in worker processes when there are many; results keep the tasks' order."""
    jobs = jobs or os.cpu_count() or 1
    if jobs == 1 or len(tasks) < PARALLEL_THRESHOLD:
        results = []
        for task in tasks:
            results.append(lint_file(task))
            if progress:
                progress()
        return results
    from nnlint.pool import map_resilient  # only paid for when there are many files

    chunksize = max(1, min(32, len(tasks) // (jobs * 8)))
    return map_resilient(lint_file, tasks, jobs, _crashed, progress, chunksize)
