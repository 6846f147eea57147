"""Orchestration of tracing: find the models, hand files to sandboxed workers, collect diagnostics.

Runs in the nnlint process and never imports torch or the checked code. Each worker is a separate
`python -m nnlint.trace.worker` process, sandboxed by `sandbox` (own process group, private home and
working folder, dies with nnlint) and `guards` (no writes, network, processes or signals), that
imports torch once and then checks file after file. The wall-clock limit of a file is enforced
here: a worker past it is killed and replaced, its file gets NNL790, and the other files go on.
"""

from __future__ import annotations

import importlib.util
import linecache
import os
import threading
import time
from dataclasses import dataclass

import libcst as cst

from nnlint import notebook
from nnlint.diagnostics import Diagnostic
from nnlint.notebook import Notebook
from nnlint.observations import SoftmaxRank
from nnlint.precheck import compile_error
from nnlint.source import DecodeError, UnreadableFile, decode, python_newlines, read_bytes
from nnlint.static.facts.classes import decide_modules
from nnlint.static.facts.names import last_part
from nnlint.trace.callsites import UNKNOWN, resolve_callee
from nnlint.trace.discover import FileModels, ModelClass, discover
from nnlint.trace.workers import TraceOptions, Worker, WorkerError, WorkerPool


@dataclass
class _File:
    path: str
    display: str
    found: FileModels
    text: str = ""  # as decoded: the trace cache keys on its slice
    notebook: Notebook | None = None  # the joined code cells are what gets traced

    def where(self, line: int) -> str:
        if self.notebook is None:
            return f"{self.display}:{line}"
        cell, line, _ = self.notebook.locate(line, 1)
        return f"{self.display}:cell {cell}:{line}"


def _config_for(name: str, file: _File, options: TraceOptions) -> tuple[str, dict | None]:
    """The `[tool.nnlint.models]` entry for a class: "path.py::Name" beats "Name"."""
    try:
        relative = os.path.relpath(os.path.abspath(file.path), os.path.abspath(options.config_root))
    except ValueError:
        relative = file.path
    for key, value in options.models.items():
        path, sep, cls = key.rpartition("::")
        if not sep or cls != name:
            continue
        path = path.replace("\\", "/")
        for candidate in (relative.replace(os.sep, "/"), file.display.replace(os.sep, "/")):
            if candidate == path or candidate.endswith("/" + path.lstrip("./")):
                return key, value
    return name, options.models.get(name)


def _discover_all(files: list[tuple[str, str]]) -> list[_File]:
    out = []
    for path, display in files:
        book = None
        try:
            if path.endswith(notebook.SUFFIX):
                book = notebook.load(notebook.read(path))
                text = book.source
            else:
                text = python_newlines(decode(read_bytes(path)))
            if compile_error(text) is not None:  # NNL001 from the static layer; keeps libcst off deep nesting
                continue
            found = discover(text)
        except (UnreadableFile, DecodeError, notebook.NotebookError, cst.ParserSyntaxError, RecursionError,
                ValueError):
            continue  # the static layer reports unreadable and unparsable files
        out.append(_File(path, display, found, text, book))
    # Bases defined in other checked files: decide what stayed undecided, to a fixpoint.
    classes = [c for f in out for c in f.found.classes]
    by_name: dict[str, list[ModelClass]] = {}
    for cls in classes:
        by_name.setdefault(cls.name, []).append(cls)

    def defined_elsewhere(base: str) -> bool | None:
        verdicts = [c.is_module for c in by_name.get(last_part(base), ()) if c.is_module is not None]
        return True if True in verdicts else (False if verdicts else None)  # read live: the fixpoint moves

    decide_modules([c for c in classes if c.is_module is None], defined_elsewhere)
    return out


def _unknowns(entry: dict) -> int:
    values = list(entry["args"]) + list(entry["kwargs"].values())
    return sum(v == UNKNOWN for v in values)


def _requests(files: list[_File], options: TraceOptions) -> list[dict]:
    # Call sites and example inputs, by the (file, class) they name through imports.
    defined_in: dict[str, set[str]] = {}
    for file in files:
        for cls in file.found.classes:
            defined_in.setdefault(cls.name, set()).add(os.path.abspath(file.path))
    instantiations: dict[tuple[str, str], list[dict]] = {}
    input_shapes: dict[tuple[str, str], list[list[str]]] = {}
    dtypes: dict[tuple[str, str], str] = {}  # `.double()` at a call site
    unbatched: set[tuple[str, str]] = set()  # `model(x[0])` at a call site
    for file in files:
        caller = os.path.abspath(file.path)
        local = {c.name for c in file.found.classes}
        targets: dict[str, str] = {}  # class name as called here -> its file
        for name, entries in file.found.instantiations.items():
            for entry in entries:
                target = resolve_callee(entry.get("callee", name), caller, defined_in, local)
                if target is not None:
                    targets[name] = target
                    instantiations.setdefault((target, name), []).append(
                        {**entry, "where": file.where(entry["line"])})
        for name, specs in file.found.input_shapes.items():
            target = caller if name in local else targets.get(name)
            if target is not None:
                input_shapes.setdefault((target, name), []).extend(specs)
        for name, dtype in file.found.dtypes.items():
            target = caller if name in local else targets.get(name)
            if target is not None:
                dtypes[(target, name)] = dtype
        for name in file.found.unbatched:
            target = caller if name in local else targets.get(name)
            if target is not None:
                unbatched.add((target, name))
    for entries in instantiations.values():
        entries.sort(key=_unknowns)
    user_dirs = sorted({os.path.dirname(os.path.abspath(f.path)) for f in files})
    requests = []
    for file in files:
        models = []
        path = os.path.abspath(file.path)
        for cls in file.found.models():
            key, config = _config_for(cls.name, file, options)
            models.append({
                "name": cls.name, "config_key": key, "config": config, "inline_input": cls.input,
                "literal_inputs": input_shapes.get((path, cls.name), []),
                "instantiations": instantiations.get((path, cls.name), [])[:4],
                "factories": file.found.factories.get(cls.name, [])[:2],
                "first_layers": cls.first_layers, "comment_input": cls.comment_input,
                "dtype": dtypes.get((path, cls.name)),
                "unbatched": (path, cls.name) in unbatched,
            })
        if models:
            requests.append({
                "path": os.path.abspath(file.path), "display": file.display, "models": models,
                "user_dirs": user_dirs, "argparse_defaults": file.found.argparse_defaults,
                "source": file.notebook.source if file.notebook else None,
                "options": {"fake": options.fake, "fake_threshold": options.fake_threshold,
                            "batch_size": options.batch_size},
            })
    return requests


def _diagnostic(code: str, message: str, file: _File, line: int, column: int, end_line: int,
                end_column: int) -> Diagnostic:
    from nnlint.registry import registry

    rule = registry()[code]  # the caller settles it: enabled codes, line text, noqa
    found = Diagnostic(code, rule.name, message, file.display, line, column, end_line, end_column,
                       rule.severity, "trace")
    return file.notebook.to_cell(found) if file.notebook else found  # with its cell's line text


def _finding_diagnostic(finding: dict, file: _File, cls: ModelClass) -> Diagnostic:
    """A worker's finding as a diagnostic; one with an unknown code or missing fields is nnlint's bug (NNL003)."""
    from nnlint.registry import registry

    try:
        rule = registry()[finding["code"]]
        if rule.layer != "trace":
            raise KeyError(finding["code"])
        return _diagnostic(rule.code, one_line(finding["message"]), file, finding["line"], finding["column"],
                           finding.get("end_line", finding["line"]), finding.get("end_column", finding["column"] + 1))
    except (KeyError, TypeError) as exc:
        return _diagnostic("NNL003", f"tracing {cls.name} reported a malformed finding ({type(exc).__name__}: "
                           f"{exc}): {str(finding)[:120]}", file, cls.line, cls.column, cls.end_line, cls.end_column)


MESSAGE_LIMIT = 200


def one_line(text: str, limit: int = MESSAGE_LIMIT) -> str:
    """A diagnostic message: one line, at most `limit` characters."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 3].rstrip() + "..."


def _not_traced(file: _File, cls: ModelClass, category: str, reason: str, configurable: bool) -> Diagnostic:
    hint = "; set its arguments/input in pyproject.toml (snippet below the report)" if configurable else ""
    head = f"{cls.name} was not traced ({category}): "
    reason = one_line(reason, MESSAGE_LIMIT - len(head) - len(hint))
    return _diagnostic("NNL790", head + reason + hint, file, cls.line, cls.column, cls.end_line, cls.end_column)


def _blocked_by_package(file: _File, package: str, line: int, names: list[str]) -> Diagnostic:
    shown = ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
    verb = "was" if len(names) == 1 else "were"
    message = one_line(f"{package} is not importable here (missing package), so {shown} {verb} not traced; "
                       "install it in this environment to trace them")
    text = linecache.getline(file.path, line).rstrip("\r\n")
    end = len(text) + 1 if text else 1
    return _diagnostic("NNL790", message, file, line, 1, line, end)


def _softmax_ranks(rows, file: _File) -> list[SoftmaxRank]:
    """A model's `implicit_dims` rows ([line, column, end_line, end_column, rank]) placed as diagnostics
    are; malformed rows are dropped (they only ever refine a fix)."""
    found = []
    for row in rows if isinstance(rows, list) else []:
        if not (isinstance(row, list) and len(row) == 5 and all(type(v) is int for v in row[:4])
                and (row[4] is None or type(row[4]) is int)):
            continue
        line, column, end_line, end_column, rank = row
        cell = None
        if file.notebook is not None:
            cell, line, column = file.notebook.locate(line, column)
            end_cell, end_line, end_column = file.notebook.locate(end_line, end_column)
            if end_cell != cell:
                continue
        found.append(SoftmaxRank(file.display, line, column, end_line, end_column, rank, cell))
    return found


def _timeout_snippet(options: TraceOptions) -> str:
    return f"[tool.nnlint.trace]\ntimeout = {int(options.timeout * 4)}"


class _ResultCollector:
    def __init__(self, options: TraceOptions):
        self.options = options
        self.diagnostics: list[Diagnostic] = []
        self.notes: list[str] = []
        self.snippets: list[str] = []  # ready-to-paste config, printed after the report
        self.softmax_ranks: set[SoftmaxRank] = set()  # facts for NNL302's fix, not diagnostics
        # (file, package) -> import line and the classes the missing package blocks
        self.blocked: dict[tuple[str, str], tuple[_File, int, list[str]]] = {}
        self.lock = threading.Lock()

    def blocked_diagnostics(self) -> list[Diagnostic]:
        out = []
        for (_, package), (file, line, names) in self.blocked.items():
            first = min((c for c in file.found.models() if c.name in names), key=lambda c: c.line)
            out.append(_blocked_by_package(file, package, line or first.line, names))
        return out

    def model_result(self, file: _File, message: dict) -> None:
        cls = next((c for c in file.found.models() if c.name == message["model"]), None)
        if cls is None:
            return
        with self.lock:
            if message.get("ok"):
                for finding in message.get("findings", []):
                    self.diagnostics.append(_finding_diagnostic(finding, file, cls))
                self.softmax_ranks.update(_softmax_ranks(message.get("implicit_dims"), file))
                # Without --verbose only the info line that value checks were skipped is shown.
                notes = message.get("notes", [])
                if not self.options.verbose:
                    self.notes.extend(f"{file.where(cls.line)}: {cls.name}: {n}" for n in notes
                                      if "skipped on fake tensors" in n)
                    return
                self.notes.append(
                    f"{file.where(cls.line)}: {cls.name}: traced via {message.get('path')}"
                    f" ({message.get('why') or 'no fallback needed'}); built with {message.get('built')};"
                    f" input {message.get('shapes')} from {message.get('input_source')};"
                    f" {message.get('params', 0):,} parameters; {message.get('seconds', 0):.2f} s")
                self.notes.extend(f"{file.where(cls.line)}: {cls.name}: {n}" for n in notes)
            elif message.get("skip"):
                if not self.options.verbose:
                    return
                self.notes.append(f"{file.where(cls.line)}: {cls.name}: skipped: {message.get('reason')}")
            elif message.get("blocked"):
                package, line = message["blocked"]
                entry = self.blocked.setdefault((file.display, package), (file, line, []))
                entry[2].append(cls.name)
                if self.options.verbose:
                    self.notes.append(f"{file.where(cls.line)}: {cls.name}: blocked by missing package {package!r}")
            else:
                category = message.get("category") or "crash"
                snippet = message.get("snippet", "")
                self.diagnostics.append(_not_traced(file, cls, category,
                                                    message.get("summary") or message.get("reason", "unknown"),
                                                    bool(snippet)))
                if snippet:
                    self.snippets.append(f"# {file.where(cls.line)}: {cls.name} ({category})\n{snippet}")
                if self.options.verbose:  # the NNL790 diagnostic already says it, shortened
                    self.notes.append(f"{file.where(cls.line)}: {cls.name}: not traced ({category}): "
                                      f"{message.get('reason')}")

    def file_failed(self, file: _File, pending: set[str], category: str, reason: str, snippet: str) -> None:
        for cls in file.found.models():
            if cls.name in pending:
                self.model_result(file, {"model": cls.name, "ok": False, "category": category, "reason": reason,
                                         "snippet": snippet})


def _run_file(worker: Worker, file: _File, request: dict, collector: _ResultCollector, model_done=None) -> None:
    pending = {m["name"] for m in request["models"]}
    worker.send(request)  # a worker that cannot start raises to the caller
    try:
        deadline = time.monotonic() + collector.options.timeout
        while True:
            message = worker.receive(deadline)
            if message.get("done"):
                return
            if "grace" in message:  # one-time warm-up of the worker, not the file's own time
                deadline += float(message["grace"])
                continue
            pending.discard(message.get("model"))
            collector.model_result(file, message)
            if model_done is not None:
                model_done()
    except TimeoutError:
        worker.kill()
        collector.file_failed(file, pending, "timeout", f"gave up after {collector.options.timeout:g} s "
                              "(construction or the forward pass is too slow, or loops forever)",
                              _timeout_snippet(collector.options))
    except WorkerError as exc:
        worker.kill()
        collector.file_failed(file, pending, "memory" if "memory" in str(exc) else "crash", str(exc), "")


def trace_files(files: list[tuple[str, str]], options: TraceOptions, *,
                pool: WorkerPool | None = None, snippets: list[str] | None = None,
                softmax_ranks: list[SoftmaxRank] | None = None,
                progress=None) -> tuple[list[Diagnostic], list[str]]:
    """Trace every model of the files; (diagnostics, verbose notes). `pool` lets callers (tests,
    long-lived tools) reuse workers, whose torch import is the expensive part. `snippets`, when
    given, receives the ready-to-paste `[tool.nnlint.models]` tables of models that were not traced;
    `softmax_ranks` the ranks that softmax calls without `dim` ran on (for NNL302's fix).
    `progress(files_done, files, models_done, models, current_file)` is called as tracing advances."""
    if importlib.util.find_spec("torch") is None:
        return [], ["tracing skipped: torch is not importable here (install it, e.g. pip install "
                    "'nnlint[trace]', or pass --static-only to silence this)"]
    found = _discover_all(files)
    by_path = {os.path.abspath(f.path): f for f in found}
    requests = _requests(found, options)
    collector = _ResultCollector(options)
    requests, keys = _cached(requests, by_path, options.cache, collector)
    if not requests:
        if softmax_ranks is not None:
            softmax_ranks += collector.softmax_ranks
        return _deduplicated(collector.diagnostics), collector.notes
    own_pool = pool is None
    if pool is None:
        pool = WorkerPool(options)
    queue = list(reversed(requests))
    queue_lock = threading.Lock()
    counts = {"files": 0, "models": 0}
    total_models = sum(len(r["models"]) for r in requests)

    def advance(display: str, files: int = 0, models: int = 0) -> None:
        if progress is not None:
            with queue_lock:
                counts["files"] += files
                counts["models"] += models
                progress(counts["files"], len(requests), counts["models"], total_models, display)

    def serve(worker: Worker) -> None:
        if not pool.wait_started(worker, lambda: bool(queue)):  # each serves as soon as it is up
            return
        while True:
            with queue_lock:
                if not queue:
                    return
                request = queue.pop()
            file = by_path[request["path"]]
            advance(file.display)
            try:
                _run_file(worker, file, request, collector, lambda file=file: advance(file.display, models=1))
            except (WorkerError, TimeoutError, OSError) as exc:  # the worker did not even start
                worker.kill()
                reason = str(exc) or "the worker did not start in time"
                collector.file_failed(file, {m["name"] for m in request["models"]}, "crash", reason, "")
            advance(file.display, files=1)

    workers = pool.workers[:max(1, min(len(pool.workers), len(requests)))]
    threads = [threading.Thread(target=serve, args=(w,), daemon=True) for w in workers]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        if own_pool:
            pool.close()
    if snippets is not None:
        snippets.extend(collector.snippets)
    if softmax_ranks is not None:
        softmax_ranks += collector.softmax_ranks
    traced = collector.diagnostics + collector.blocked_diagnostics()
    if options.verbose:
        collector.notes.extend(sorted({f"trace sandbox: {w.isolation}" for w in workers if w.isolation}))
    for request in requests:
        file = by_path[request["path"]]
        outcome = [d for d in traced if d.path == file.display]
        # A timeout or a dead worker may not happen next time: only complete results are kept.
        key = keys.get(request["path"])
        if key and options.cache is not None and not any(d.code in ("NNL790", "NNL003") for d in outcome):
            ranks = [seen.to_row() for seen in collector.softmax_ranks if seen.path == file.display]
            options.cache.put(file.path, key, outcome, [], facts=ranks)
    return _deduplicated(traced), collector.notes


def _cached(requests: list[dict], by_path: dict[str, _File], cache, collector: _ResultCollector
            ) -> tuple[list[dict], dict[str, str | None]]:
    """The requests still to trace, and their cache keys; cached files' findings go to the collector."""
    if cache is None:
        return requests, {}
    from nnlint.trace.trace_cache import trace_key

    missing, keys = [], {}
    for request in requests:
        file = by_path[request["path"]]
        key = trace_key(file.text, request["path"], request)
        hit = cache.get(file.path, key, file.display) if key else None
        if hit is None:
            missing.append(request)
            keys[request["path"]] = key
        else:
            collector.diagnostics.extend(hit[0])
            collector.softmax_ranks.update(_cached_ranks(cache.facts(file.path, key), file))
            if collector.options.verbose:
                collector.notes.append(f"{file.display}: trace results from the cache (nothing it runs changed)")
    return missing, keys


def _cached_ranks(rows: list, file: _File) -> list[SoftmaxRank]:
    try:
        return [SoftmaxRank.from_row(row, file.display) for row in rows]
    except (TypeError, ValueError):
        return []  # a damaged entry: the static fix stays


def _deduplicated(diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    """A class is analysed on its own and inside the models that use it: one report per hazard."""
    out, seen = [], set()
    for d in sorted(diagnostics, key=Diagnostic.sort_key):
        if (d.path, d.cell, d.line, d.code) not in seen:
            seen.add((d.path, d.cell, d.line, d.code))
            out.append(d)
    return out
