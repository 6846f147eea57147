"""The static layer's engine: read once, parse once, run every enabled rule in one walk, locate, settle."""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, replace

import libcst as cst

from nnlint import notebook
from nnlint.context import FileContext
from nnlint.diagnostics import Applicability, Diagnostic, Edit, Fix
from nnlint.fixes import apply_edits, compatible_fixes
from nnlint.positions import locate
from nnlint.precheck import compile_error
from nnlint.registry import registry
from nnlint.reparse import Reparser
from nnlint.rule import NodeFix, Rule, StaticRule
from nnlint.source import (
    DecodeError,
    TooLarge,
    UnreadableFile,
    decode,
    python_newlines,
    read_bytes,
    reject_binary,
    too_large_message,
)
from nnlint.static.project import ProjectIndex
from nnlint.suppression import FileResult, is_suppressed, noqa_problems, settle
from nnlint.tree import children

# Below this many files, starting worker processes costs more than it saves.
PARALLEL_THRESHOLD = 24


@dataclass(frozen=True)
class FileTask:
    path: str  # where to read it
    display: str  # how reports name it
    enabled: frozenset[str]  # codes enabled for this file
    data: bytes | None = None  # the file's bytes when already read (cache lookup, stdin)
    max_bytes: int | None = None  # larger files are skipped with NNL005


def _diagnostic(rule: type[Rule], path: str, line: int, column: int, end_line: int, end_column: int,
                message: str) -> Diagnostic:
    return Diagnostic(rule.code, rule.name, message, path, line, column, end_line, end_column, rule.severity)


def _handlers(rule_type: type) -> list[tuple[str, str, str]]:
    cached = rule_type.__dict__.get("_handler_cache")
    if cached is None:
        cached = [
            (attr.split("_", 1)[0], attr.split("_", 1)[1], attr)
            for attr in dir(rule_type)
            if attr.startswith(("visit_", "leave_"))
        ]
        setattr(rule_type, "_handler_cache", cached)  # noqa: B010 - one cache per class
    return cached


class _Walk:
    """One pass over the tree, calling each fact provider's, then each rule's, visit_/leave_ methods."""

    def __init__(self, ctx: FileContext, rules: list[StaticRule]):
        self.ctx = ctx
        self.rules = rules
        for rule in rules:  # walk-fed providers must exist before the walk
            for kind in type(rule).uses:
                ctx.facts(kind)
        self.providers = [p for p in ctx.providers() if type(p).walks()]
        self.crashes: list[tuple[str, cst.CSTNode, BaseException]] = []  # (what crashed, where, why)
        self.dropped: set[int] = set()
        ctx.walk_started = True
        self._build_dispatch()

    def _build_dispatch(self) -> None:
        self.visits: dict[str, list] = defaultdict(list)
        self.leaves: dict[str, list] = defaultdict(list)
        for participant in [*self.providers, *self.rules]:
            for kind, node_type, attr in _handlers(type(participant)):
                table = self.visits if kind == "visit" else self.leaves
                table[node_type].append((participant, getattr(participant, attr)))

    def _call(self, handlers: list, node: cst.CSTNode) -> None:
        # Rebuilding the dispatch makes new lists, so iterating `handlers` stays safe.
        for participant, handler in handlers:
            if self.dropped and id(participant) in self.dropped:
                continue  # stopped earlier at this very node
            try:
                handler(node)
            except Exception as exc:  # noqa: BLE001 - a rule bug must not hide the other rules' findings
                self._drop(participant, node, exc)

    def _drop(self, participant, node: cst.CSTNode, exc: Exception) -> None:
        if isinstance(participant, StaticRule):
            if participant not in self.rules:
                return
            self.rules.remove(participant)
            self.dropped.add(id(participant))
            rule = type(participant)
            self.crashes.append((f"rule {rule.code} ({rule.name})", node, exc))
        else:  # a provider: the rules reading its facts stop too, rather than read partial facts
            self.providers.remove(participant)
            self.dropped.add(id(participant))
            users = [r for r in self.rules if self._depends(type(r).uses, type(participant))]
            self.rules = [r for r in self.rules if r not in users]
            self.dropped.update(id(r) for r in users)
            codes = ", ".join(type(r).code for r in users) or "none"
            self.crashes.append((f"{type(participant).__name__} facts (rules stopped: {codes})", node, exc))
        self._build_dispatch()

    @classmethod
    def _depends(cls, uses, provider: type) -> bool:
        return any(kind is provider or cls._depends(kind.needs, provider) for kind in uses)

    def run(self) -> None:
        imports = self.ctx.imports
        stack: list[tuple[cst.CSTNode, bool]] = [(self.ctx.module, False)]
        while stack:
            node, leaving = stack.pop()
            type_name = type(node).__name__
            if leaving:
                self._call(self.leaves.get(type_name, []), node)
                continue
            if type_name in ("Import", "ImportFrom"):
                imports.add(node)  # type: ignore[arg-type]  # narrowed by its type's name
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


def lint_text(text: str, path: str, enabled: frozenset[str], project: ProjectIndex | None = None,
              file_path: str | None = None, reparser: Reparser | None = None) -> FileResult:
    """Check source text already decoded. `path` names the file in diagnostics; `file_path` is where it was
    read from, and `project` the files checked with it (for imports between them). `reparser`: the
    parses of this file's earlier versions, for one checked again and again (an editor's buffer)."""
    text = python_newlines(text)  # lone CR or mixed endings: Python's line numbers, not libcst's
    rejected = compile_error(text, path)  # what Python rejects, and nesting deep enough to crash libcst
    if rejected is not None:
        line, column, message = rejected
        return _finish([_tool_diagnostic("NNL001", path, message, line, column)], text, enabled)
    module = project.parsed(file_path, text) if project is not None and file_path else None
    statement_lines = None  # where each top-level statement begins, when the reparser knows
    try:
        if module is None and reparser is not None:
            module, statement_lines = reparser.parse(text), reparser.statement_lines
        module = module or cst.parse_module(text)
    except (cst.ParserSyntaxError, RecursionError, MemoryError, ValueError) as exc:
        detail = exc.message if isinstance(exc, cst.ParserSyntaxError) else f"{type(exc).__name__}: {exc}"
        message = f"libcst cannot parse this file although Python can: {detail}"
        return _finish([_tool_diagnostic("NNL001", path, message)], text, enabled)

    ctx = FileContext(path, module, project, file_path)
    walk = _Walk(ctx, [rule_type(ctx) for rule_type in _static_rules(enabled)])
    try:
        walk.run()
    except RecursionError as exc:  # pragma: no cover - the walk is iterative; rules may recurse
        walk.crashes.append(("the walk", module, exc))
    found: list[Diagnostic] = []
    wanted = [r.node for r in ctx.reports] + [node for _, node, _ in walk.crashes]
    wanted += [node for r in ctx.reports if r.fix for pair in r.fix.replacements for node in pair
               if isinstance(node, cst.CSTNode)]
    try:
        positions = locate(module, [node for node in wanted if node is not module], statement_lines)
    except RecursionError:
        positions = {}
    if module in wanted:  # a finding about the whole file: its span needs no code generation
        lines = text.split("\n")
        positions[module] = (1, 0, len(lines), len(lines[-1]))

    def located(rule: type[Rule], node: cst.CSTNode, message: str) -> Diagnostic:
        line, column, end_line, end_column = positions.get(node, (1, 0, 1, 0))
        return _diagnostic(rule, path, line, column + 1, end_line, end_column + 1, message)

    for report in ctx.reports:
        diagnostic = located(report.rule, report.node, report.message)
        if report.fix is not None:
            diagnostic = replace(diagnostic, fix=_located_fix(report.fix, module, positions, text))
        found.append(diagnostic)
    for what, node, error in walk.crashes:
        message = f"{what} crashed on this file: {type(error).__name__}: {error}"
        found.append(located(registry()["NNL003"], node, message))
    return _finish(found, text, enabled, noqa_path=None if walk.crashes else path)


def _source_of(lines: list[str], line: int, column: int, end_line: int, end_column: int) -> str:
    """The original text of a located span (0-based columns): keeps nested lines' full indentation."""
    if line == end_line:
        return lines[line - 1][column:end_column]
    return "".join([lines[line - 1][column:], *lines[line:end_line - 1], lines[end_line - 1][:end_column]])


def _located_fix(fix: NodeFix, module: cst.Module, positions: dict, text: str) -> Fix | None:
    """The rule's node replacements as text edits; None when a node's place is unknown.

    A replacement that is itself a node of the file (a statement moved elsewhere) keeps its original
    text; a new node is rendered by libcst."""
    edits = []
    lines = text.splitlines(keepends=True)
    for old, new in fix.replacements:
        if old not in positions:
            return None
        line, column, end_line, end_column = positions[old]
        if isinstance(new, str):
            content = new
        elif new in positions:
            content = _source_of(lines, *positions[new])
        else:
            content = module.code_for_node(new)
        edits.append(Edit(line, column + 1, end_line, end_column + 1, content))
    return Fix(fix.message, tuple(sorted(edits, key=lambda e: (e.line, e.column))), fix.applicability)


def _finish(found: list[Diagnostic], text: str, enabled: frozenset[str], noqa_path: str | None = None) -> FileResult:
    """Settle the findings; with `noqa_path` (every rule walked the file), report noqa codes that do nothing."""
    lines = text.split("\n")
    result = settle(found, enabled, lines)
    if noqa_path is not None and "NNL004" in enabled and "noqa" in text:
        result.diagnostics += _unused_noqa(noqa_path, lines, result, enabled)
    return result


MAX_FIX_PASSES = 10


Refine = Callable[[list[Diagnostic], Callable[[Diagnostic], Diagnostic] | None], list[Diagnostic]]


def fix_text(text: str, path: str, enabled: frozenset[str], allowed: frozenset[Applicability],
             refine: Refine | None = None) -> tuple[str, list[Diagnostic], FileResult]:
    """Apply the allowed fixes and check again until nothing more applies (one fix can expose another).

    Returns the new text, the diagnostics whose fixes were applied, and the findings that remain.
    A notebook's text is its JSON: the rules see its joined cells, the edits go back into the cells.
    `refine(found, placed)` rewrites the first pass's findings (whose places `placed` gives as reported:
    a notebook's in its cells) with what was learned about the text as given, e.g. by tracing."""
    applied: list[Diagnostic] = []
    for attempt in range(MAX_FIX_PASSES + 1):
        book = notebook.load(text) if path.endswith(notebook.SUFFIX) else None
        source = book.source if book else text
        result = lint_text(source, path, enabled)
        if attempt == 0 and refine is not None:  # later passes see moved lines
            result = FileResult(refine(result.diagnostics, book.to_cell if book else None), result.suppressed)
        if attempt == MAX_FIX_PASSES:
            break  # fixes that keep producing fixes: stop, report what remains
        fixable = [d for d in result.diagnostics if d.fix is not None]
        taken = compatible_fixes(source, [d.fix for d in fixable if d.fix is not None], allowed)
        if not taken:
            break
        done = [d for d in fixable if any(d.fix is fix for fix in taken)]
        applied += [book.to_cell(d) for d in done] if book else done
        edits = [edit for fix in taken for edit in fix.edits]
        text = notebook.apply_edits(text, edits) if book else apply_edits(text, edits)
    if book:
        result = FileResult([book.to_cell(d) for d in result.diagnostics], [book.to_cell(d) for d in result.suppressed])
    return text, applied, result


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


# The files of the current `lint_files` run; worker processes inherit it when they fork.
_project: ProjectIndex | None = None


def lint_file(task: FileTask, project: ProjectIndex | None = None, reparser: Reparser | None = None) -> FileResult:
    """Check one file (`reparser`: the parses of its earlier versions, for an editor's buffer)."""
    project = project or _project
    if task.path.endswith(notebook.SUFFIX):
        return _lint_notebook(task, project, reparser)
    try:
        data = reject_binary(task.data) if task.data is not None else read_bytes(task.path, task.max_bytes)
        if task.max_bytes and len(data) > task.max_bytes:  # bytes read earlier (cache key, stdin)
            raise TooLarge(len(data))
        text = decode(data)
    except TooLarge as exc:
        message = too_large_message(exc.size, task.max_bytes or 0)
        return _finish([_tool_diagnostic("NNL005", task.display, message)], "", task.enabled)
    except UnreadableFile as exc:
        return _finish([_tool_diagnostic("NNL002", task.display, str(exc))], "", task.enabled)
    except DecodeError as exc:
        return _finish([_tool_diagnostic("NNL001", task.display, exc.message, exc.line, exc.column)], "", task.enabled)
    try:
        return lint_text(text, task.display, task.enabled, project, os.path.abspath(task.path), reparser)
    except Exception as exc:  # noqa: BLE001 - a bug on one file must not lose the others
        return _crashed(task, f"raised {type(exc).__name__}: {exc}")


def _crashed(task: FileTask, how: str) -> FileResult:
    message = f"nnlint crashed on this file (the checker {how}); the other files were checked"
    return FileResult([_tool_diagnostic("NNL003", task.display, message[:200])])


def _lint_notebook(task: FileTask, project: ProjectIndex | None, reparser: Reparser | None = None) -> FileResult:
    """The code cells checked as one module; positions mapped back to cells."""
    try:
        book = notebook.load(notebook.read(task.path, task.data))
    except UnreadableFile as exc:
        return _finish([_tool_diagnostic("NNL002", task.display, str(exc))], "", task.enabled)
    except notebook.NotebookError as exc:
        return _finish([_tool_diagnostic("NNL002", task.display, exc.message, exc.line, exc.column)], "",
                       task.enabled)
    size = len(book.source.encode("utf-8"))  # the code checked: outputs and metadata do not count
    if task.max_bytes and size > task.max_bytes:
        return _finish([_tool_diagnostic("NNL005", task.display, too_large_message(size, task.max_bytes))], "",
                       task.enabled)
    result = lint_text(book.source, task.display, task.enabled, project, os.path.abspath(task.path), reparser)
    broken = _finish([_tool_diagnostic("NNL001", task.display, b.message, b.line, b.column) for b in book.broken],
                     book.source, task.enabled)
    found = [book.to_cell(d) for d in result.diagnostics + broken.diagnostics]
    return FileResult(sorted(found, key=Diagnostic.sort_key),
                      [book.to_cell(d) for d in result.suppressed + broken.suppressed])


def lint_files(tasks: list[FileTask], jobs: int | None = None, progress=None,
               project: ProjectIndex | None = None) -> list[FileResult]:
    """Check every file, in worker processes when there are many; results keep the tasks' order.
    `project`: the files checked together (default: these), whose imports of each other are followed."""
    global _project
    jobs = jobs or os.cpu_count() or 1
    project = project or ProjectIndex(task.path for task in tasks)
    if jobs == 1 or len(tasks) < PARALLEL_THRESHOLD:
        results = []
        for task in tasks:
            results.append(lint_file(task, project))
            if progress:
                progress()
        return results
    from nnlint.pool import map_resilient  # only paid for when there are many files

    chunksize = max(1, min(32, len(tasks) // (jobs * 8)))
    _project = project
    try:
        return map_resilient(lint_file, tasks, jobs, _crashed, progress, chunksize)
    finally:
        _project = None
