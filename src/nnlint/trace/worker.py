"""The worker process: imports torch once, then answers requests to check files' models.

Started by the runner as `python -m nnlint.trace.worker REQUEST_FD RESPONSE_FD MEMORY_BYTES` with
stdin closed and stdout/stderr captured to a file. Requests and responses are JSON lines on the two
pipe fds, so nothing the checked code prints can corrupt them. Each file's models are answered one
message at a time, so a timeout loses only the models not yet checked.

The jobs live in their own modules: `loading` (the file's safe slice), `construction` (building a
model), `input_search` (an input its forward accepts), `model_check` (one model, end to end). They
import torch, so they are imported here only after the memory cap is set.
"""

from __future__ import annotations

import inspect
import json
import math
import os
import resource
import sys
import traceback
from contextlib import suppress

from nnlint.trace import guards, missing
from nnlint.trace.failures import CheckedCodeFailed, checked_code, describe
from nnlint.trace.inputs import SpecError
from nnlint.trace.loading import FINDER, forget_sliced_modules, load_slice
from nnlint.trace.slicing import slice_roots


def check_file(request: dict, send, warm_meta) -> None:
    import torch.nn as nn

    from nnlint.trace.model_check import TRACED, ModelFailure, check_inside, check_model, config_snippet

    path = request["path"]
    options = request.get("options", {})
    for directory in request.get("user_dirs", []) + [os.environ.get("NNLINT_CALLER_CWD", "")]:
        FINDER.add_project_folder(directory)
    for entry in request.get("sys_path", []):
        if entry not in sys.path:
            sys.path.insert(0, entry)
    roots = slice_roots(request)
    forget_sliced_modules()
    try:
        with checked_code():
            module = load_slice(path, roots, request.get("source"))
    except CheckedCodeFailed as failure:  # SystemExit and ImportError of anything included
        exc = failure.original
        if isinstance(exc, ImportError):
            package = getattr(exc, "name", None)
            why = (f"importing the module failed: package {package!r} is not importable ({failure})"
                   if package else f"importing the module failed: {failure}")
        else:
            why = f"loading the module's definitions failed: {failure}"
        for model in request["models"]:
            send({"model": model["name"], "ok": False, "reason": why, "snippet": ""})
        return
    guards.module_loaded()
    namespace = module.__dict__
    failures = getattr(module, "__nnlint_failures__", {})
    TRACED.clear()
    deferred: dict[type, dict] = {}  # classes that failed alone: checked inside a traced model
    for model_request in request["models"]:
        name = model_request["name"]
        cls = namespace.get(name)
        if cls is None and name in failures:
            blocked = missing.blocking(failures[name])
            send({"model": name, "ok": False, "blocked": blocked,
                  "category": "missing package" if blocked else "crash",
                  "reason": f"defining the class failed: {describe(failures[name])}", "snippet": ""})
            continue
        if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
            send({"model": name, "ok": False, "skip": True, "reason": "not an nn.Module once loaded"})
            continue
        if getattr(cls.forward, "__name__", "") == "_forward_unimplemented" or inspect.isabstract(cls):
            send({"model": name, "ok": False, "skip": True, "reason": "defines no forward"})
            continue
        if _is_mixin(cls, nn.Module):
            send({"model": name, "ok": False, "skip": True, "reason": "a mixin: its forward defers to the next base"})
            continue
        model_request = {**model_request, "argparse_defaults": request.get("argparse_defaults", {})}
        try:
            with checked_code():
                send({"model": name, **check_model(cls, namespace, model_request, options, path, warm_meta)})
        except CheckedCodeFailed as failure:
            exc = failure.original
            if isinstance(exc, ModelFailure):
                message = {"model": name, "ok": False, "reason": exc.reason, "summary": exc.summary,
                           "category": exc.category, "blocked": exc.blocked,
                           "snippet": config_snippet(model_request.get("config_key") or name, cls, exc.best_guess)}
                # Blocked side effects are this model's to report: answered now, never deferred to another.
                if exc.blocked or model_request.get("config") or guards.attempted():
                    send(message)
                else:
                    deferred[cls] = message
            elif isinstance(exc, SpecError):
                send({"model": name, "ok": False, "reason": f"invalid input spec: {exc}", "snippet": ""})
            else:
                send({"model": name, "ok": False, "reason": f"internal error: {failure}",
                      "snippet": "", "traceback": "".join(traceback.format_exception(exc))[-2000:]})
    if deferred:
        with suppress(CheckedCodeFailed), checked_code():
            check_inside(deferred, path, send)


def _is_mixin(cls, module_type) -> bool:
    """`class Bottle(nn.Module)` whose forward calls super().forward(): a mixin for other bases."""
    code = getattr(cls.forward, "__code__", None)
    return cls.__mro__[1] is module_type and code is not None and "super" in code.co_names


def main(argv: list[str]) -> int:
    request_fd, response_fd, memory = int(argv[0]), int(argv[1]), int(argv[2])
    isolation = guards.enter_isolation()  # while single-threaded: dies with nnlint, no network
    sys.dont_write_bytecode = True  # never leave sliced bytecode in the user's __pycache__
    sys.meta_path.insert(0, FINDER)
    sys.argv = ["nnlint-trace-worker"]
    requests = os.fdopen(request_fd, "r", encoding="utf-8")
    responses = os.fdopen(response_fd, "w", encoding="utf-8")

    def send(message: dict) -> None:
        responses.write(json.dumps(message, default=_jsonable) + "\n")
        responses.flush()

    import torch  # the one expensive import, paid once per worker

    if memory > 0:
        # The cap applies to what the checked code adds on top of torch itself: a CUDA build of
        # torch alone maps more than 4 GiB of address space, and capping it would fail the import.
        os.environ["NNLINT_MEMORY_CAP"] = str(memory)
        limit = _address_space() + memory
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    threads = int(os.environ.get("NNLINT_TRACE_THREADS", "1") or 1)
    if threads > 0:  # 1 by default: the models are small and the cores are shared by the workers
        torch.set_num_threads(threads)
    from nnlint.trace.building import install_argparse_defaults
    from nnlint.trace.construction import _value_for
    from nnlint.trace.implicit_dims import remember_construction_sites
    from nnlint.trace.model_check import MetaWarmup, warm_analyzer

    install_argparse_defaults(lambda name: _value_for(name, None, 1))  # the checked code's parse_args()
    remember_construction_sites()  # where each nn.Softmax is built: NNL302 reports it there

    warm_analyzer(fake=False)  # the meta kernels load lazily, for the first big model (MetaWarmup)
    guards.install()  # from here on: no writes outside the sandbox, no network, processes or signals
    send = guards.attributing(send)
    warm_meta = MetaWarmup(lambda seconds: send({"grace": seconds}))
    send({"ready": True, "torch": torch.__version__, "isolation": isolation})
    for line in requests:
        check_file(json.loads(line), send, warm_meta)
        send({"done": True})
    return 0


def _address_space() -> int:
    """Current virtual size of this process, in bytes."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _jsonable(value):
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return repr(value)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
