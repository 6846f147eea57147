"""The child process of `nnlint run`: install the probes, run the user's script as `__main__`, stop it, report.

`python -m nnlint.run.bootstrap REQUEST.json`. The request names the script (or module), its arguments,
the steps and seconds to allow, the mode (run, overfit, baseline), the address-space cap and the file
to write the result to. The result is one JSON object; whatever happens, the child ends with os._exit
so no user thread, atexit handler or DataLoader worker keeps it alive.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import sys
import time
import traceback

CUDA_SIGNS = ("Torch not compiled with CUDA", "Found no NVIDIA driver", "no CUDA GPUs are available",
              "deserialize object on a CUDA device", "CUDA driver", "cuda is not available", "CUDA is not available",
              "Torch not compiled with MPS", "MPS backend", "NCCL")
MEMORY_SIGNS = ("can't allocate memory", "not enough memory", "Cannot allocate memory", "bad_alloc",
                "DefaultCPUAllocator")


def _limit_memory(cap: int) -> None:
    if cap > 0:
        try:
            resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
        except (ValueError, OSError):
            pass


def _absolute(where):
    if where is None:
        return None
    return [os.path.abspath(where[0]), *where[1:]]


def _crash(exc: BaseException, memory: int) -> dict:
    from nnlint.run.locate import traceback_site

    text = f"{type(exc).__name__}: {exc}".strip().splitlines()
    summary = " ".join(line.strip() for line in text[:2])[:160]
    if isinstance(exc, MemoryError) or any(sign in str(exc) for sign in MEMORY_SIGNS):
        reason = f"exceeded the memory cap ({memory / 1024**3:.1f} GiB) [{summary}]"
        kind = "memory"
    elif any(sign.lower() in str(exc).lower() for sign in CUDA_SIGNS):
        reason = (f"needs a GPU (CUDA) this machine lacks [{summary}]: pick the device with "
                  "`'cuda' if torch.cuda.is_available() else 'cpu'`")
        kind = "device"
    else:
        reason = f"crashed: {summary}"
        kind = "crash"
    return {"kind": kind, "message": reason, "site": _absolute(traceback_site(exc.__traceback__)),
            "traceback": "".join(traceback.format_exception(exc))[-4000:]}


def _layer_of(name: str) -> str:
    return name.rsplit(".", 1)[0] if "." in name else "(model)"


def _series(probes) -> dict:
    layers: dict[str, list[float]] = {}
    for step, norms in enumerate(probes.grad_norms):
        squares: dict[str, float] = {}
        for name, value in norms.items():
            layer = _layer_of(name)
            squares[layer] = squares.get(layer, 0.0) + value * value
        for layer, total in squares.items():
            layers.setdefault(layer, [0.0] * step).append(total ** 0.5)
    return {
        "loss": probes.loss_series,
        "grad_norm": layers,
        "activations": {name: values for name, values in probes.activations.items() if values},
        "step_time": probes.step_times,
        "data_wait": probes.data_waits,
    }


def main(request_path: str) -> None:
    with open(request_path, encoding="utf-8") as handle:
        request = json.load(handle)
    result: dict = {"steps": 0, "findings": [], "notes": [], "crash": None, "stop": None}
    _limit_memory(int(request.get("memory") or 0))
    try:
        _run(request, result)
    except BaseException as exc:  # noqa: BLE001 - anything that escaped is reported, never a hang
        result["crash"] = result["crash"] or {"kind": "internal", "message": f"nnlint's probes failed: {exc!r}",
                                              "site": None, "traceback": traceback.format_exc()[-4000:]}
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except Exception:  # noqa: BLE001
        pass
    with open(request["result"], "w", encoding="utf-8") as handle:
        json.dump(result, handle, default=str)
    os._exit(0)


def _run(request: dict, result: dict) -> None:
    try:
        import torch  # noqa: F401
    except ImportError as exc:
        result["crash"] = {"kind": "setup", "message": f"torch is not importable here ({exc})", "site": None}
        return
    from nnlint.run.probes import Probes, StopRun
    from nnlint.run.locate import frame_site, user_frame
    from nnlint.run.verdicts import conclude

    probes = Probes(int(request["steps"]), request.get("mode", "run"))
    probes.install()
    timed_out: list = []

    def out_of_time(signum, frame):
        if probes.stop_reason is None:
            found = user_frame(frame)
            timed_out.append(frame_site(found) if found is not None else None)
            probes.stop("time")

    signal.signal(signal.SIGALRM, out_of_time)
    script, module = request.get("script"), request.get("module")
    sys.argv = [script or module, *request.get("args", [])]
    import runpy

    started = time.perf_counter()
    signal.setitimer(signal.ITIMER_REAL, float(request["time"]))
    try:
        # As `python script.py` / `python -m module` would: the script's folder (or the cwd) first on the path.
        if module:
            sys.path[0] = os.getcwd()
            runpy.run_module(module, run_name="__main__", alter_sys=True)
        else:
            sys.path[0] = os.path.dirname(os.path.abspath(script))
            runpy.run_path(script, run_name="__main__")
        probes.stop_reason = "finished"
    except StopRun:
        pass
    except SystemExit as exc:
        if exc.code not in (None, 0):
            crash = _crash(exc, int(request.get("memory") or 0))
            crash["message"] = f"the script exited with status {exc.code!r}"
            crash["kind"] = "exit"
            result["crash"] = crash
        probes.stop_reason = probes.stop_reason or "finished"
    except BaseException as exc:  # noqa: BLE001 - the user's script crashed
        result["crash"] = _crash(exc, int(request.get("memory") or 0))
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    elapsed = time.perf_counter() - started
    if probes._mode is not None:
        probes._mode.close()
    if probes.stop_reason == "time" and probes.step == 0 and result["crash"] is None:
        result["crash"] = {"kind": "timeout", "site": _absolute(timed_out[0] if timed_out else None),
                           "message": f"no optimizer step within {float(request['time']):g} s (it was running "
                                      "this line); raise --time or make the first steps cheaper"}
    try:
        if result["crash"] is None or probes.step > 0:
            conclude(probes)
    except Exception as exc:  # noqa: BLE001
        probes.notes.append(f"verdicts failed: {type(exc).__name__}: {exc}")
    first_root = next(iter(probes.roots.values()), None)
    result.update({
        "steps": probes.step,
        "stop": probes.stop_reason,
        "seconds": elapsed,
        "findings": [{"code": f.code, "message": f.message, "site": _absolute(f.site), "severity": f.severity}
                     for f in probes.findings],
        "notes": probes.notes,
        "loss_site": _absolute(probes.loss_calls[0].site if probes.loss_calls else probes.last_loss_site
                               or probes.backward_site),
        "model_site": _absolute(first_root.called if first_root else None),
        "series": _series(probes),
    })


if __name__ == "__main__":
    main(sys.argv[1])
