"""`nnlint server`: a language server over stdio, a thin front end over the same engine as the CLI.

Open and change: the buffer is checked statically (debounced, well under 100 ms for a 500-line
file). Save: the saved file is checked again and its models traced in one sandboxed worker that
stays warm between saves; a newer save supersedes an older one, whose results are dropped (and whose
worker is killed when it has already run long). Tracing runs in a thread, so the editor never waits.
Configuration comes from the checked file's own project, exactly as `nnlint check` finds it.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import time
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from lsprotocol import types as lsp
from pygls.lsp.server import LanguageServer
from pygls.uris import to_fs_path

from nnlint import __version__, notebook
from nnlint.api import CheckOptions, Reparser, RuleSelection, check_paths, lint_source
from nnlint.config import ConfigError, ConfigFinder, Settings
from nnlint.diagnostics import Applicability, Diagnostic, Fix, Severity
from nnlint.docs import rule_url
from nnlint.engine import FileTask, lint_file
from nnlint.registry import registry
from nnlint.suppression import suppressed_codes

if TYPE_CHECKING:
    from nnlint.trace.workers import WorkerPool

DEBOUNCE_S = 0.003  # changes that arrive together (a paste, a multi-cursor edit) collapse into one check
KILL_STALE_AFTER_S = 1.0  # a superseded trace that ran this long is killed rather than awaited
FIX_ALL_KIND = "source.fixAll.nnlint"
_SEVERITY = {Severity.ERROR: lsp.DiagnosticSeverity.Error, Severity.WARNING: lsp.DiagnosticSeverity.Warning,
             Severity.INFO: lsp.DiagnosticSeverity.Information}

log = logging.getLogger("nnlint.server")


@dataclass
class _Document:
    static: list[Diagnostic] = field(default_factory=list)
    traced: list[Diagnostic] = field(default_factory=list)
    debounce: asyncio.Task | None = None
    save_generation: int = 0
    reparser: Reparser = field(default_factory=Reparser)
    saved_fixes: dict[tuple[str, int, int, str], Fix] = field(default_factory=dict)


class NnlintServer(LanguageServer):
    def __init__(self) -> None:
        # Notebooks are synced whole (their code cells joined as `nnlint check` joins them), never cell by cell.
        cells = lsp.NotebookDocumentFilterWithCells(cells=[lsp.NotebookCellLanguage("python")], notebook="*")
        super().__init__("nnlint", __version__, notebook_document_sync=lsp.NotebookDocumentSyncOptions(
            notebook_selector=[cells], save=True))
        self.documents: dict[str, _Document] = {}
        self.pool: WorkerPool | None = None  # started by the first save
        self.trace_lock = asyncio.Lock()
        self.trace_started: float | None = None
        self.reported_problems: set[str] = set()

    def document(self, uri: str) -> _Document:
        return self.documents.setdefault(uri, _Document())

    # Checking -----------------------------------------------------------------------------------

    @staticmethod
    def settings_for(path: str) -> Settings | None:
        """The config of the file's own project, found as `nnlint check` finds it (read again each time:
        an edited pyproject.toml applies to the next check)."""
        return ConfigFinder(list(registry())).for_path(Path(path))

    def options_for(self, path: str, **kwargs) -> CheckOptions:
        """The CLI's options for this file, with the config of the file's own project."""
        settings = self.settings_for(path)
        config = settings.source if settings and settings.source else None
        return CheckOptions(paths=[path], config=config, cache=False, jobs=1, **kwargs)

    def check_buffer(self, uri: str) -> None:
        """Static check of the editor's current text (saved or not)."""
        with _collections_deferred():
            self._check_buffer(uri)

    def _check_buffer(self, uri: str) -> None:
        text = self.workspace.get_text_document(uri).source
        path = to_fs_path(uri) or uri
        document = self.document(uri)
        try:
            if path.endswith(notebook.SUFFIX):  # its JSON: the code cells are joined as the CLI joins them
                options = self.options_for(path, stdin=text.encode("utf-8"), stdin_filename=path, static_only=True)
                found = check_paths([path], options).diagnostics
            else:  # the pieces of the last version that did not change are not parsed again
                settings = self.settings_for(path)
                found = lint_source(text, path, settings, reparser=document.reparser)
        except ConfigError as exc:
            self.config_problem(str(exc))
            found = []
        document.static = found
        self.publish(uri)

    def check_soon(self, uri: str, check: Callable[[str], None]) -> None:
        """`check(uri)` after the debounce, unless another change of the same document comes first."""
        document = self.document(uri)
        if document.debounce is not None:
            document.debounce.cancel()

        async def later() -> None:
            await asyncio.sleep(DEBOUNCE_S)
            check(uri)

        document.debounce = asyncio.ensure_future(later())

    def check_notebook(self, notebook_uri: str) -> None:
        """Static check of an open notebook: its code cells joined in order (magics masked), findings
        published on the cells that hold them."""
        book = self.workspace.get_notebook_document(notebook_uri=notebook_uri)
        if book is None:
            return
        cells = [cell.document for cell in book.cells if cell.kind == lsp.NotebookCellKind.Code]
        sources = [self.workspace.get_text_document(uri).source for uri in cells]
        path = to_fs_path(notebook_uri) or notebook_uri
        if not path.endswith(notebook.SUFFIX):
            path += notebook.SUFFIX  # an untitled notebook: checked, and configured, as one
        with _collections_deferred():
            try:
                settings = self.settings_for(path)
                enabled = RuleSelection(settings=settings).for_path(Path(path))
                task = FileTask(path, path, enabled, data=notebook.as_ipynb(sources))
                found = lint_file(task, reparser=self.document(notebook_uri).reparser).diagnostics
            except ConfigError as exc:
                self.config_problem(str(exc))
                found = []
            for number, uri in enumerate(cells, 1):  # every cell, so fixed ones are cleared
                self.document(uri).static = [d for d in found if d.cell == number]
                self.publish(uri)

    def config_problem(self, message: str) -> None:
        """A broken [tool.nnlint] is said once, as a message, not as a finding in every file."""
        if message not in self.reported_problems:
            self.reported_problems.add(message)
            self.window_show_message(lsp.ShowMessageParams(lsp.MessageType.Error, f"nnlint: {message}"))

    async def check_saved(self, uri: str) -> None:
        """Tracing of the saved file (or notebook) in the warm worker; a newer save wins."""
        document = self.document(uri)
        document.save_generation += 1
        generation = document.save_generation
        if self.trace_started is not None and time.monotonic() - self.trace_started > KILL_STALE_AFTER_S:
            self._kill_running_trace()
        async with self.trace_lock:
            if generation != document.save_generation:
                return  # an even newer save is queued behind us
            path = to_fs_path(uri) or uri
            self.trace_started = time.monotonic()
            try:
                found = await asyncio.get_running_loop().run_in_executor(None, self._trace, path)
            except ConfigError as exc:
                self.config_problem(str(exc))
                found = []
            finally:
                self.trace_started = None
        if generation != document.save_generation:
            return
        book = self.workspace.get_notebook_document(notebook_uri=uri)
        if book is None:
            self._deliver_saved(uri, found)
            return
        for number, cell in enumerate(book.cells, 1):  # the file's cells are counted markdown included
            if cell.kind == lsp.NotebookCellKind.Code:
                self._deliver_saved(cell.document, [d for d in found if d.cell == number])

    def _deliver_saved(self, uri: str, found: list[Diagnostic]) -> None:
        document = self.document(uri)
        document.traced = [d for d in found if d.source != "static"]
        # Tracing can make a static finding's fix exact (NNL302's dim): kept for the buffer's same finding.
        document.saved_fixes = {(d.code, d.line, d.column, d.line_text): d.fix for d in found
                                if d.source == "static" and d.fix is not None}
        self.publish(uri)

    def _trace(self, path: str) -> list[Diagnostic]:
        from nnlint.trace.options import trace_options
        from nnlint.trace.workers import WorkerPool

        options = self.options_for(path)  # a ConfigError goes back to the event loop's thread
        if self.pool is None:
            settings = self.settings_for(path)
            self.pool = WorkerPool(trace_options(settings, options))
        options.trace_pool = self.pool
        return check_paths([path], options).diagnostics

    def _kill_running_trace(self) -> None:
        for worker in self.pool.workers if self.pool else ():
            process = worker.process
            if process is not None and process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGKILL)  # its thread sees the death and moves on
                except ProcessLookupError:
                    pass

    def current(self, uri: str) -> list[Diagnostic]:
        """Static findings of the buffer (with the fixes the saved check made exact), plus traced ones
        whose line still reads as when it was saved."""
        document = self.document(uri)
        lines = self.workspace.get_text_document(uri).lines
        traced = [d for d in document.traced
                  if d.line <= len(lines) and lines[d.line - 1].rstrip("\r\n") == d.line_text]
        static = [replace(d, fix=document.saved_fixes.get((d.code, d.line, d.column, d.line_text), d.fix))
                  for d in document.static]
        return static + traced

    def publish(self, uri: str) -> None:
        text_document = self.workspace.get_text_document(uri)
        diagnostics = [self.to_lsp(d, text_document.lines) for d in self.current(uri)]
        self.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(
            uri=uri, diagnostics=diagnostics, version=text_document.version))

    # Conversions --------------------------------------------------------------------------------

    def range(self, lines: Sequence[str], line: int, column: int, end_line: int, end_column: int) -> lsp.Range:
        """1-based code-point coordinates (end exclusive) to the client's 0-based position encoding."""
        start = lsp.Position(line - 1, max(column - 1, 0))
        end = lsp.Position(end_line - 1, max(end_column - 1, 0))
        return self.workspace.position_codec.range_to_client_units(lines, lsp.Range(start, end))

    def to_lsp(self, d: Diagnostic, lines: Sequence[str]) -> lsp.Diagnostic:
        return lsp.Diagnostic(
            range=self.range(lines, d.line, d.column, d.end_line, d.end_column),
            message=d.message,
            severity=_SEVERITY[d.severity],
            code=d.code,
            code_description=lsp.CodeDescription(href=rule_url(d.code)),
            source="nnlint" if d.source == "static" else f"nnlint ({d.source})",
        )

    def text_edits(self, uri: str, fix) -> list[lsp.TextEdit]:
        lines = self.workspace.get_text_document(uri).lines
        return [lsp.TextEdit(self.range(lines, e.line, e.column, e.end_line, e.end_column), e.content)
                for e in fix.edits]

    # Code actions -------------------------------------------------------------------------------

    def code_actions(self, params: lsp.CodeActionParams) -> list[lsp.CodeAction]:
        uri = params.text_document.uri
        lines = self.workspace.get_text_document(uri).lines
        wanted = params.context.only
        actions: list[lsp.CodeAction] = []
        for d in self.current(uri):
            if not _overlaps(self.range(lines, d.line, d.column, d.end_line, d.end_column), params.range):
                continue
            lsp_diagnostic = self.to_lsp(d, lines)
            if d.fix is not None and d.fix.applicability is not Applicability.DISPLAY_ONLY:
                unsafe = " (unsafe: check the result)" if d.fix.applicability is Applicability.UNSAFE else ""
                actions.append(lsp.CodeAction(
                    title=f"{d.code}: {d.fix.message}{unsafe}", kind=lsp.CodeActionKind.QuickFix,
                    diagnostics=[lsp_diagnostic], is_preferred=d.fix.applicability is Applicability.SAFE,
                    edit=lsp.WorkspaceEdit(changes={uri: self.text_edits(uri, d.fix)})))
            noqa = _noqa_edit(lines, d)
            if noqa is not None:
                actions.append(lsp.CodeAction(
                    title=f"{d.code}: add `# noqa: {d.code}`", kind=lsp.CodeActionKind.QuickFix,
                    diagnostics=[lsp_diagnostic],
                    edit=lsp.WorkspaceEdit(changes={uri: [lsp.TextEdit(self.range(lines, *noqa[:4]), noqa[4])]})))
        fix_all = self.fix_all(uri)
        if fix_all is not None:
            actions.append(fix_all)
        if wanted:
            actions = [a for a in actions if a.kind and any(a.kind == k or a.kind.startswith(k + ".") for k in wanted)]
        return actions

    def fix_all(self, uri: str) -> lsp.CodeAction | None:
        """Every safe fix of the buffer, applied and re-checked until none is left, as one edit."""
        text_document = self.workspace.get_text_document(uri)
        text = text_document.source
        if not any(d.fix and d.fix.applicability is Applicability.SAFE for d in self.document(uri).static):
            return None
        if self.workspace.get_notebook_document(cell_uri=uri) is not None:
            return None  # a cell is no file to re-check alone: its quick fixes still apply one by one
        path = to_fs_path(uri) or uri
        try:
            changes = check_paths([path], self.options_for(path, stdin=text.encode("utf-8"), stdin_filename=path,
                                                 static_only=True, fix=frozenset({Applicability.SAFE}))).changes
        except ConfigError:
            return None
        if not changes:
            return None
        fixed, applied = changes[0].after, changes[0].applied
        lines = text_document.lines
        whole = lsp.Range(lsp.Position(0, 0), lsp.Position(len(lines), 0))
        return lsp.CodeAction(
            title=f"nnlint: fix all safe fixes ({len(applied)})", kind=FIX_ALL_KIND,
            edit=lsp.WorkspaceEdit(changes={uri: [lsp.TextEdit(whole, fixed)]}))


@contextmanager
def _collections_deferred():
    """No garbage collection between a change and its diagnostics: a full collection over the parsed
    trees costs tens of milliseconds (p90 of the static check 101 -> 75 ms); it runs right after."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _overlaps(a: lsp.Range, b: lsp.Range) -> bool:
    def key(p: lsp.Position) -> tuple[int, int]:
        return p.line, p.character

    return key(a.start) <= key(b.end) and key(b.start) <= key(a.end)


def _noqa_edit(lines: Sequence[str], d: Diagnostic) -> tuple[int, int, int, int, str] | None:
    """Where and what to insert so `d`'s line carries `# noqa: CODE` (extending an existing list)."""
    if d.line > len(lines):
        return None
    line = lines[d.line - 1].rstrip("\r\n")
    codes = suppressed_codes(line)
    if codes is not None:
        if not codes or d.code in codes:
            return None  # already silenced
        start = line.lower().rindex("noqa")
        tail = line[start:]
        return d.line, start + 1, d.line, len(line) + 1, f"{tail.rstrip()}, {d.code}"
    stripped = len(line.rstrip())
    return d.line, stripped + 1, d.line, len(line) + 1, f"  # noqa: {d.code}"


def create_server() -> NnlintServer:
    server = NnlintServer()

    @server.feature(lsp.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: NnlintServer, params: lsp.DidOpenTextDocumentParams) -> None:
        ls.check_buffer(params.text_document.uri)

    @server.feature(lsp.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: NnlintServer, params: lsp.DidChangeTextDocumentParams) -> None:
        ls.check_soon(params.text_document.uri, ls.check_buffer)

    @server.feature(lsp.NOTEBOOK_DOCUMENT_DID_OPEN)
    def notebook_did_open(ls: NnlintServer, params: lsp.DidOpenNotebookDocumentParams) -> None:
        ls.check_notebook(params.notebook_document.uri)

    @server.feature(lsp.NOTEBOOK_DOCUMENT_DID_CHANGE)
    def notebook_did_change(ls: NnlintServer, params: lsp.DidChangeNotebookDocumentParams) -> None:
        ls.check_soon(params.notebook_document.uri, ls.check_notebook)

    @server.feature(lsp.NOTEBOOK_DOCUMENT_DID_SAVE)
    async def notebook_did_save(ls: NnlintServer, params: lsp.DidSaveNotebookDocumentParams) -> None:
        ls.check_notebook(params.notebook_document.uri)
        await ls.check_saved(params.notebook_document.uri)

    @server.feature(lsp.NOTEBOOK_DOCUMENT_DID_CLOSE)
    def notebook_did_close(ls: NnlintServer, params: lsp.DidCloseNotebookDocumentParams) -> None:
        document = ls.documents.pop(params.notebook_document.uri, None)
        if document is not None and document.debounce is not None:
            document.debounce.cancel()
        for cell in params.cell_text_documents:
            ls.documents.pop(cell.uri, None)
            ls.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(uri=cell.uri, diagnostics=[]))

    @server.feature(lsp.TEXT_DOCUMENT_DID_SAVE, lsp.SaveOptions(include_text=False))
    async def did_save(ls: NnlintServer, params: lsp.DidSaveTextDocumentParams) -> None:
        uri = params.text_document.uri
        ls.check_buffer(uri)
        await ls.check_saved(uri)

    @server.feature(lsp.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: NnlintServer, params: lsp.DidCloseTextDocumentParams) -> None:
        uri = params.text_document.uri
        document = ls.documents.pop(uri, None)
        if document is not None and document.debounce is not None:
            document.debounce.cancel()
        ls.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(uri=uri, diagnostics=[]))

    @server.feature(lsp.TEXT_DOCUMENT_CODE_ACTION, lsp.CodeActionOptions(
        code_action_kinds=[lsp.CodeActionKind.QuickFix, FIX_ALL_KIND]))
    def code_action(ls: NnlintServer, params: lsp.CodeActionParams) -> list[lsp.CodeAction]:
        return ls.code_actions(params)

    @server.feature(lsp.SHUTDOWN)
    def shutdown(ls: NnlintServer, params) -> None:
        if ls.pool is not None:
            ls.pool.close()
            ls.pool = None

    return server


def serve() -> None:
    server = create_server()
    gc.freeze()  # what the imports made lives as long as the server: no collection need look at it again
    server.start_io()
