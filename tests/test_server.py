"""`nnlint server` end to end: a real LSP client (pygls's) talks to the real server process over stdio."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

import pytest

lsp = pytest.importorskip("lsprotocol.types")
from pygls.lsp.client import LanguageClient  # noqa: E402
from pygls.uris import from_fs_path  # noqa: E402

SRC = str(Path(__file__).resolve().parents[1] / "src")
BUGGY = "import torch\nimport torch.nn.functional as F\n\n\ndef f(x):\n    return torch.log(F.softmax(x, dim=1))\n"
FIXED = "import torch\nimport torch.nn.functional as F\n\n\ndef f(x):\n    return F.log_softmax(x, dim=1)\n"
# A model whose forward divides by a variance that can be zero: only tracing (the forward pass) sees it.
TRACED = """import torch
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 4)

    def forward(self, x):
        return torch.sqrt(self.fc(x))
"""


class Session:
    """One server process and the diagnostics it publishes, per URI, in arrival order."""

    def __init__(self, root: Path):
        self.root = root
        self.client = LanguageClient("nnlint-tests", "1")
        self.published: dict[str, asyncio.Queue] = {}
        self.versions: dict[str, int] = {}

        @self.client.feature(lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
        def on_diagnostics(params: lsp.PublishDiagnosticsParams) -> None:
            self.queue(params.uri).put_nowait(list(params.diagnostics))

        self.messages: asyncio.Queue = asyncio.Queue()

        @self.client.feature(lsp.WINDOW_SHOW_MESSAGE)
        def on_message(params: lsp.ShowMessageParams) -> None:
            self.messages.put_nowait(params)

    def queue(self, uri: str) -> asyncio.Queue:
        return self.published.setdefault(uri, asyncio.Queue())

    async def __aenter__(self) -> "Session":
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [SRC, os.environ.get("PYTHONPATH")]))}
        await self.client.start_io(sys.executable, "-m", "nnlint", "server", env=env, cwd=str(self.root))
        await self.client.initialize_async(lsp.InitializeParams(
            capabilities=lsp.ClientCapabilities(), root_uri=from_fs_path(str(self.root))))
        self.client.initialized(lsp.InitializedParams())
        return self

    async def __aexit__(self, *exc) -> None:
        await self.client.shutdown_async(None)
        self.client.exit(None)
        await self.client.stop()

    def open(self, name: str, text: str) -> str:
        path = self.root / name
        path.write_text(text, encoding="utf-8")
        uri = from_fs_path(str(path))
        self.versions[uri] = 1
        self.client.text_document_did_open(lsp.DidOpenTextDocumentParams(
            lsp.TextDocumentItem(uri=uri, language_id="python", version=1, text=text)))
        return uri

    def change(self, uri: str, text: str) -> None:
        self.versions[uri] += 1
        self.client.text_document_did_change(lsp.DidChangeTextDocumentParams(
            lsp.VersionedTextDocumentIdentifier(uri=uri, version=self.versions[uri]),
            [lsp.TextDocumentContentChangeWholeDocument(text=text)]))

    def save(self, uri: str, text: str) -> None:
        Path(self.client_path(uri)).write_text(text, encoding="utf-8")
        self.client.text_document_did_save(lsp.DidSaveTextDocumentParams(lsp.TextDocumentIdentifier(uri=uri)))

    @staticmethod
    def client_path(uri: str) -> str:
        from pygls.uris import to_fs_path

        return to_fs_path(uri)

    async def next(self, uri: str, timeout: float = 30) -> list[lsp.Diagnostic]:
        return await asyncio.wait_for(self.queue(uri).get(), timeout)

    async def until(self, uri: str, predicate, timeout: float = 120) -> list[lsp.Diagnostic]:
        """The first publication for `uri` that satisfies `predicate`."""
        async def wait() -> list[lsp.Diagnostic]:
            while True:
                diagnostics = await self.queue(uri).get()
                if predicate(diagnostics):
                    return diagnostics

        return await asyncio.wait_for(wait(), timeout)


def run(coroutine):
    return asyncio.run(coroutine)


def test_open_change_and_code_actions(tmp_path):
    async def scenario():
        async with Session(tmp_path) as session:
            uri = session.open("train.py", BUGGY)
            (found,) = await session.next(uri)
            assert found.code == "NNL402" and found.source == "nnlint"
            assert found.severity == lsp.DiagnosticSeverity.Warning
            assert found.range == lsp.Range(lsp.Position(5, 11), lsp.Position(5, 41))
            assert found.code_description.href.endswith("rules/NNL402.md")

            actions = await session.client.text_document_code_action_async(lsp.CodeActionParams(
                lsp.TextDocumentIdentifier(uri=uri), found.range, lsp.CodeActionContext(diagnostics=[found])))
            titles = {a.title: a for a in actions}
            fix = titles["NNL402: replace with log_softmax"]
            assert fix.is_preferred and fix.kind == lsp.CodeActionKind.QuickFix
            (edit,) = fix.edit.changes[uri]
            assert edit.range == found.range and edit.new_text == "F.log_softmax(x, dim=1)"
            noqa = titles["NNL402: add `# noqa: NNL402`"]
            (edit,) = noqa.edit.changes[uri]
            assert edit.new_text == "  # noqa: NNL402" and edit.range.start == lsp.Position(5, 41)
            fix_all = next(a for a in actions if a.kind == "source.fixAll.nnlint")
            assert fix_all.edit.changes[uri][0].new_text == FIXED

            session.change(uri, FIXED)  # the user applies the fix: the warning goes away
            assert await session.next(uri) == []
            session.change(uri, BUGGY.replace("dim=1))", "dim=1))  # noqa: NNL402"))
            assert await session.next(uri) == []

    run(scenario())


def test_config_comes_from_the_files_project(tmp_path):
    project = tmp_path / "proj"
    project.mkdir()
    (project / "pyproject.toml").write_text('[tool.nnlint]\nignore = ["NNL402"]\n')

    async def scenario():
        async with Session(tmp_path) as session:
            quiet = session.open("proj/train.py", BUGGY)
            loud = session.open("train.py", BUGGY)
            assert await session.next(quiet) == []
            assert [d.code for d in await session.next(loud)] == ["NNL402"]

    run(scenario())


def test_broken_config_is_one_message_not_a_crash(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.nnlint]\nselectt = ["NNL3"]\n')

    async def scenario():
        async with Session(tmp_path) as session:
            uri = session.open("train.py", BUGGY)
            assert await session.next(uri) == []
            message = await asyncio.wait_for(session.messages.get(), 10)
            assert message.type == lsp.MessageType.Error and "selectt" in message.message
            session.change(uri, FIXED)
            assert await session.next(uri) == []
            assert session.messages.empty()  # said once

    run(scenario())


def test_syntax_error_while_typing_is_one_diagnostic_not_a_crash(tmp_path):
    async def scenario():
        async with Session(tmp_path) as session:
            uri = session.open("train.py", "def f(:\n")
            (found,) = await session.next(uri)
            assert found.code == "NNL001"
            session.change(uri, FIXED)
            assert await session.next(uri) == []

    run(scenario())


@pytest.mark.skipif(__import__("importlib").util.find_spec("torch") is None, reason="tracing needs torch")
def test_save_traces_the_file_in_a_warm_worker(tmp_path):
    async def scenario():
        async with Session(tmp_path) as session:
            uri = session.open("model.py", TRACED)
            assert not [d for d in await session.next(uri) if d.source != "nnlint"]
            session.save(uri, TRACED)
            traced = await session.until(uri, lambda ds: any(d.source == "nnlint (trace)" for d in ds))
            (hazard,) = [d for d in traced if d.source == "nnlint (trace)"]
            assert hazard.code.startswith("NNL7") and hazard.range.start.line == 10
            # The fix is saved: the trace finding is cleared by the next traced save.
            fixed = TRACED.replace("torch.sqrt(self.fc(x))", "torch.sqrt(self.fc(x).clamp_min(1e-12))")
            session.change(uri, fixed)
            session.save(uri, fixed)
            await session.until(uri, lambda ds: not ds, timeout=60)

    run(scenario())


SLOW = """import time

import torch
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        time.sleep(200)  # a slow build: the next save must not wait for it
        self.fc = nn.Linear(8, 4)

    def forward(self, x):
        return self.fc(x)
"""


@pytest.mark.skipif(__import__("importlib").util.find_spec("torch") is None, reason="tracing needs torch")
def test_newer_save_supersedes_a_running_trace_and_typing_is_never_blocked(tmp_path):
    (tmp_path / "pyproject.toml").write_text("[tool.nnlint.trace]\ntimeout = 600\n")  # only a kill ends it early

    async def scenario() -> float:
        async with Session(tmp_path) as session:
            uri = session.open("model.py", SLOW)
            await session.next(uri)
            session.save(uri, SLOW)
            await session.next(uri)  # the static check of the save; the trace is now running
            # Typing while it traces: static diagnostics still arrive at once.
            session.change(uri, SLOW + "p = torch.nn.functional.softmax(x)\n")
            changed = await session.next(uri, timeout=10)
            assert [d.code for d in changed] == ["NNL302"]
            await asyncio.sleep(1.5)  # the slow trace has now run long enough to be killed
            session.change(uri, TRACED)
            saved = time.monotonic()
            session.save(uri, TRACED)
            traced = await session.until(uri, lambda ds: any(d.source == "nnlint (trace)" for d in ds), timeout=150)
            assert not any(d.code == "NNL790" for d in traced), "the superseded trace must not be reported"
            return time.monotonic() - saved

    # Waiting for the 200 s build would take that long; a killed one costs a worker restart.
    assert run(scenario()) < 100


DENSE = """import torch
import torch.nn.functional as F
from torch import nn


class Classifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(16, 4)

    def forward(self, x):
        return F.softmax(self.fc(x))


probs = Classifier()(torch.randn(8, 16))
"""


@pytest.mark.skipif(__import__("importlib").util.find_spec("torch") is None, reason="tracing needs torch")
def test_save_makes_the_softmax_dim_fix_exact(tmp_path):
    """While typing NNL302's fix is unsafe; once a save traced the call on a 2-D input it is safe."""
    async def scenario():
        async with Session(tmp_path) as session:
            uri = session.open("dense.py", DENSE)

            async def dim_fix(diagnostics) -> lsp.CodeAction:
                (found,) = diagnostics
                actions = await session.client.text_document_code_action_async(lsp.CodeActionParams(
                    lsp.TextDocumentIdentifier(uri=uri), found.range, lsp.CodeActionContext(diagnostics=[found])))
                return next(a for a in actions if a.title.startswith("NNL302: pass"))

            found = [d for d in await session.next(uri) if d.code == "NNL302"]
            typed = await dim_fix(found)
            assert "unsafe" in typed.title and not typed.is_preferred
            session.save(uri, DENSE)
            deadline = time.monotonic() + 120  # the first save starts the worker (import torch)
            while "unsafe" in (saved := await dim_fix(found)).title:
                assert time.monotonic() < deadline, "the saved check never made the fix exact"
                await asyncio.sleep(0.2)
            assert saved.is_preferred
            (edit,) = saved.edit.changes[uri]
            assert edit.new_text.endswith("dim=-1")

    run(scenario())


def test_notebook_cells_are_checked_joined_and_reported_on_their_cells(tmp_path):
    """The rules see the notebook's code cells as one module (imports in the first cell resolve the
    call in the second), and each finding lands on its own cell, in the cell's own lines."""
    async def scenario():
        async with Session(tmp_path) as session:
            notebook_uri = from_fs_path(str(tmp_path / "explore.ipynb"))
            texts = ["import torch\nimport torch.nn.functional as F\n%matplotlib inline\n",
                     "# logits of a batch\nx = torch.randn(4, 3)\nlogp = torch.log(F.softmax(x, dim=1))\n",
                     "print(logp.shape)\n"]
            cells = [f"vscode-notebook-cell:{tmp_path}/explore.ipynb#cell{n}" for n in range(3)]
            session.client.notebook_document_did_open(lsp.DidOpenNotebookDocumentParams(
                lsp.NotebookDocument(uri=notebook_uri, notebook_type="jupyter-notebook", version=1, cells=[
                    lsp.NotebookCell(kind=lsp.NotebookCellKind.Code, document=uri) for uri in cells]),
                [lsp.TextDocumentItem(uri=uri, language_id="python", version=1, text=text)
                 for uri, text in zip(cells, texts)]))
            (found,) = await session.next(cells[1])
            assert found.code == "NNL402" and found.range.start == lsp.Position(2, 7)
            assert await session.next(cells[0]) == [] and await session.next(cells[2]) == []

            actions = await session.client.text_document_code_action_async(lsp.CodeActionParams(
                lsp.TextDocumentIdentifier(uri=cells[1]), found.range, lsp.CodeActionContext(diagnostics=[found])))
            fix = next(a for a in actions if a.title.startswith("NNL402"))
            (edit,) = fix.edit.changes[cells[1]]
            assert edit.range == found.range and edit.new_text == "F.log_softmax(x, dim=1)"

            fixed = texts[1].replace("torch.log(F.softmax(x, dim=1))", "F.log_softmax(x, dim=1)")
            session.client.notebook_document_did_change(lsp.DidChangeNotebookDocumentParams(
                lsp.VersionedNotebookDocumentIdentifier(version=2, uri=notebook_uri),
                lsp.NotebookDocumentChangeEvent(cells=lsp.NotebookDocumentCellChanges(text_content=[
                    lsp.NotebookDocumentCellContentChanges(
                        document=lsp.VersionedTextDocumentIdentifier(uri=cells[1], version=2),
                        changes=[lsp.TextDocumentContentChangeWholeDocument(text=fixed)])]))))
            assert await session.next(cells[1]) == []

    run(scenario())


@pytest.mark.skipif(__import__("importlib").util.find_spec("torch") is None, reason="tracing needs torch")
def test_notebook_save_traces_it_and_places_trace_findings_in_their_cell(tmp_path):
    import json

    async def scenario():
        async with Session(tmp_path) as session:
            path = tmp_path / "model.ipynb"
            cells = [("markdown", "# A model\n"), ("code", TRACED), ("code", "net = Net()\n")]
            path.write_text(json.dumps({"cells": [
                {"cell_type": kind, "metadata": {}, "source": text,
                 **({"outputs": [], "execution_count": None} if kind == "code" else {})} for kind, text in cells],
                "metadata": {}, "nbformat": 4, "nbformat_minor": 5}), encoding="utf-8")
            notebook_uri = from_fs_path(str(path))
            uris = [f"vscode-notebook-cell:{path}#cell{n}" for n in range(3)]
            kinds = {"markdown": lsp.NotebookCellKind.Markup, "code": lsp.NotebookCellKind.Code}
            session.client.notebook_document_did_open(lsp.DidOpenNotebookDocumentParams(
                lsp.NotebookDocument(uri=notebook_uri, notebook_type="jupyter-notebook", version=1, cells=[
                    lsp.NotebookCell(kind=kinds[kind], document=uri) for uri, (kind, _) in zip(uris, cells)]),
                [lsp.TextDocumentItem(uri=uri, language_id="python" if kind == "code" else "markdown", version=1,
                                      text=text) for uri, (kind, text) in zip(uris, cells)]))
            assert await session.next(uris[1]) == []
            session.client.notebook_document_did_save(lsp.DidSaveNotebookDocumentParams(
                lsp.NotebookDocumentIdentifier(uri=notebook_uri)))
            traced = await session.until(uris[1], lambda ds: any(d.source == "nnlint (trace)" for d in ds))
            (hazard,) = [d for d in traced if d.source == "nnlint (trace)"]
            assert hazard.code.startswith("NNL7") and hazard.range.start.line == 10  # the cell's own line

    run(scenario())
