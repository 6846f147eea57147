"""Language server latency, measured from the client side over stdio, as an editor sees it.

    python bench/lsp_bench.py [--edits 30] [--saves 5]

A 500-line training script (buggy fixtures laid end to end) is opened in `nnlint server`. Static:
the time from sending `didChange` (one line edited) to receiving the `publishDiagnostics` for that
version, debounce included, over EDITS edits (target: median <= 100 ms), next to the floor of
libcst parsing the same text in the bench process, interleaved (on a shared, loaded machine the
ratio is the comparable number). Traced: the time from
`didSave` to the publication that carries the trace results, once the worker is warm (the first
save, which starts the worker and imports torch, is reported apart), over SAVES saves of
fixtures/buggy/trace_softmax.py, a model file with a traced hazard (target: median <= 1.5 s).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import libcst
from lsprotocol import types as lsp
from pygls.lsp.client import LanguageClient
from pygls.uris import from_fs_path

ROOT = Path(__file__).resolve().parent.parent
FILES = ("cnn_classifier.py", "text_lstm.py", "loop_classifier.py", "losses_softmax_ce.py", "tabular_mlp.py",
         "trace_softmax.py")


def script(lines: int = 500) -> str:
    """Whole fixtures until the file has at least `lines` lines (cutting one would break its syntax)."""
    parts, count = [], 0
    for name in FILES * 3:
        text = (ROOT / "fixtures" / "buggy" / name).read_text(encoding="utf-8")
        parts.append(text)
        count += text.count("\n")
        if count >= lines:
            break
    return "".join(parts)


def summary(label: str, times: list[float], target: float) -> str:
    times = sorted(times)
    p90 = times[min(len(times) - 1, int(len(times) * 0.9))]
    return (f"{label}: median {statistics.median(times) * 1000:7.1f} ms, p90 {p90 * 1000:7.1f} ms, "
            f"max {times[-1] * 1000:7.1f} ms over {len(times)} (target <= {target * 1000:.0f} ms)")


async def main(edits: int, saves: int) -> None:
    client = LanguageClient("nnlint-bench", "1")
    published: asyncio.Queue = asyncio.Queue()

    @client.feature(lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    def on_diagnostics(params: lsp.PublishDiagnosticsParams) -> None:
        published.put_nowait((time.perf_counter(), params.version, list(params.diagnostics)))

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "train.py"
        text = script()
        path.write_text(text, encoding="utf-8")
        uri = from_fs_path(str(path))
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "src"),
                                                                          os.environ.get("PYTHONPATH")]))}
        await client.start_io(sys.executable, "-m", "nnlint", "server", env=env, cwd=tmp)
        await client.initialize_async(lsp.InitializeParams(capabilities=lsp.ClientCapabilities()))
        client.initialized(lsp.InitializedParams())
        client.text_document_did_open(lsp.DidOpenTextDocumentParams(
            lsp.TextDocumentItem(uri=uri, language_id="python", version=1, text=text)))
        _, _, first = await published.get()
        print(f"{text.count(chr(10))}-line file, {len(first)} static diagnostics")

        static, floor = [], []
        for version in range(2, edits + 2):
            edited = text.replace("\n", f"\nEDIT = {version}\n", 1)
            sent = time.perf_counter()
            client.text_document_did_change(lsp.DidChangeTextDocumentParams(
                lsp.VersionedTextDocumentIdentifier(uri=uri, version=version),
                [lsp.TextDocumentContentChangeWholeDocument(text=edited)]))
            while True:
                received, published_version, _ = await published.get()
                if published_version == version:
                    break
            static.append(received - sent)
            started = time.perf_counter()  # the floor, interleaved: libcst parsing the same text here
            libcst.parse_module(edited)
            floor.append(time.perf_counter() - started)
            await asyncio.sleep(0.1)
        print(summary("static after change", static, 0.100))
        print(f"  floor (libcst parse only, same text, this process): median "
              f"{statistics.median(floor) * 1000:.1f} ms; ratio {statistics.median(static) / statistics.median(floor):.2f}")

        model = Path(tmp) / "model.py"
        model_text = (ROOT / "fixtures" / "buggy" / "trace_softmax.py").read_text(encoding="utf-8")
        model.write_text(model_text, encoding="utf-8")
        uri = from_fs_path(str(model))
        client.text_document_did_open(lsp.DidOpenTextDocumentParams(
            lsp.TextDocumentItem(uri=uri, language_id="python", version=1, text=model_text)))
        await published.get()
        traced = []
        for index in range(saves + 1):
            sent = time.perf_counter()
            client.text_document_did_save(lsp.DidSaveTextDocumentParams(lsp.TextDocumentIdentifier(uri=uri)))
            await published.get()  # the static check of the saved buffer
            received, _, diagnostics = await published.get()  # with the trace results
            if index == 0:
                count = sum(d.source == "nnlint (trace)" for d in diagnostics)
                print(f"first save (starts the worker): {received - sent:.2f} s, {count} trace diagnostics")
            else:
                traced.append(received - sent)
                assert any(d.source == "nnlint (trace)" for d in diagnostics), "the traced hazard went missing"
        print(summary("traced after save, warm worker", traced, 1.5))
        await client.shutdown_async(None)
        client.exit(None)
        await client.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--edits", type=int, default=30)
    parser.add_argument("--saves", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(main(args.edits, args.saves))
