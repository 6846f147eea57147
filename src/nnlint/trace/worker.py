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

from nnlint.trace import guards
from nnlint.trace.failures import CheckedCodeFailed, checked_code
from nnlint.trace.inputs import SpecError
from nnlint.trace.loading import FINDER, forget_sliced_modules, load_slice, slice_roots


def check_file(request: dict, send, warm_meta) -> None:
    import torch.nn as nn

    from nnlint.trace.model_check import ModelFailure, check_model, config_snippet

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
            missing = getattr(exc, "name", None)
            why = (f"importing the module failed: package {missing!r} is not importable ({failure})"
                   if missing else f"importing the module failed: {failure}")
        else:
            why = f"loading the module's definitions failed: {failure}"
        for model in request["models"]:
            send({"model": model["name"], "ok": False, "reason": why, "snippet": ""})
        return
    guards.module_loaded()
    namespace = module.__dict__
    for model_request in request["models"]:
        name = model_request["name"]
        cls = namespace.get(name)
        if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
            send({"model": name, "ok": False, "skip": True, "reason": "not an nn.Module once loaded"})
            continue
        if getattr(cls.forward, "__name__", "") == "_forward_unimplemented" or inspect.isabstract(cls):
            send({"model": name, "ok": False, "skip": True, "reason": "defines no forward"})
            continue
        try:
            with checked_code():
                send({"model": name, **check_model(cls, namespace, model_request, options, path, warm_meta)})
        except CheckedCodeFailed as failure:
            exc = failure.original
            if isinstance(exc, ModelFailure):
                reason, best_guess = exc.args
                send({"model": name, "ok": False, "reason": reason,
                      "snippet": config_snippet(model_request.get("config_key") or name, cls, best_guess)})
            elif isinstance(exc, SpecError):
                send({"model": name, "ok": False, "reason": f"invalid input spec: {exc}", "snippet": ""})
            else:
                send({"model": name, "ok": False, "reason": f"internal error: {failure}",
                      "snippet": "", "traceback": "".join(traceback.format_exception(exc))[-2000:]})


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
    from nnlint.trace.model_check import MetaWarmup, warm_analyzer

    warm_analyzer(fake=False)
    torch.empty(2, device="meta") + 1  # loads the meta kernels, used for every model's input search
    guards.install()  # from here on: no writes outside the sandbox, no network, processes or signals
    send = guards.attributing(send)
    warm_meta = MetaWarmup(lambda seconds: send({"grace": seconds}))
    send({"ready": True, "torch": torch.__version__, "isolation": isolation})
    for line in requests:
        request = json.loads(line)
        if request.get("stop"):
            break
        check_file(request, send, warm_meta)
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
