"""The worker side of the sandbox: what checked code may not do while its models are built and run.

`enter_isolation()` runs first thing in the worker, while it is still single-threaded: the worker
dies with nnlint (PR_SET_PDEATHSIG, then a check that nnlint is still its parent) and, where the
kernel allows it without privileges, moves into a network namespace of its own (no interface but
a loopback that is down), so any connection fails at once.

`install()` runs after `import torch` and adds a Python audit hook (PEP 578). From then on model code
may not open files for writing outside the worker's temporary folder (nor delete, rename, or chmod
them), connect, bind or resolve names over the network, start processes (`subprocess`, `os.system`,
`exec*`, `posix_spawn`, `fork`), or signal another process. The attempt raises `Blocked` at the call,
so nothing happens on the machine, and it is recorded with the file:line of the checked code that
made it; `attributing(send)` turns the model's answer into a failure that names the attempt (NNL790).

Audit hooks guard against accidents, such as a constructor downloading weights or a module writing
a log: code that means harm can get around them (ctypes, native extensions).
"""

from __future__ import annotations

import ctypes
import os
import sys
import sysconfig
import typing

CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
PR_SET_PDEATHSIG = 1


class Blocked(PermissionError):
    """A side effect the sandbox refused."""


_state: dict[str, typing.Any] = {"sandbox": "", "cwd": "", "installed": False}
_attempts: list[tuple[str, str]] = []  # (what, file:line) blocked since the last answer
_file_attempts: list[tuple[str, str]] = []  # blocked while the checked file loaded


# --- before torch: process isolation ---------------------------------------------------------

def enter_isolation() -> str:
    """Die with nnlint, work from the caller's folder, and leave the network; says which isolation."""
    _die_with_parent(int(os.environ.get("NNLINT_PARENT_PID", "0") or 0))
    _state["sandbox"] = os.path.realpath(os.environ.get("NNLINT_SANDBOX_DIR") or os.getcwd())
    _state["cwd"] = os.environ.get("NNLINT_CALLER_CWD", "")
    if _state["cwd"] and sys.path and os.path.realpath(sys.path[0] or ".") == _state["sandbox"]:
        sys.path[0] = str(_state["cwd"])  # `python -m` put the (temporary) working folder first: the project's instead
    return _leave_network()


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def _die_with_parent(parent: int) -> None:
    import signal

    try:
        _libc().prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the runner's process-group kill still applies
        return
    if parent and os.getppid() != parent:  # nnlint died before the death signal was armed
        os._exit(1)


def _leave_network() -> str:
    if not sys.platform.startswith("linux"):
        return "audit hooks only (no network namespaces on this platform)"
    uid, gid = os.geteuid(), os.getegid()
    try:
        libc = _libc()
    except OSError:
        return "audit hooks only (libc not loadable)"
    if uid == 0 and libc.unshare(CLONE_NEWNET) == 0:
        return "network namespace (no network) + audit hooks"
    if libc.unshare(CLONE_NEWUSER | CLONE_NEWNET) == 0:
        try:  # keep our own ids inside, so file ownership looks the same
            _write("/proc/self/setgroups", "deny")
            _write("/proc/self/uid_map", f"{uid} {uid} 1")
            _write("/proc/self/gid_map", f"{gid} {gid} 1")
        except OSError:
            pass
        return "unprivileged user + network namespace (no network) + audit hooks"
    error = os.strerror(ctypes.get_errno())
    return f"audit hooks only (no unprivileged network namespace: {error})"


def _write(path: str, text: str) -> None:
    with open(path, "w") as handle:
        handle.write(text)


# --- after torch: the audit hook ---------------------------------------------------------------

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
_ALLOWED_FILES = {"/dev/null", "/dev/zero", "/dev/full"}


def install() -> None:
    """Add the audit hook (once; it cannot be removed). Call after the worker's own imports."""
    if _state["installed"]:
        return
    _state["installed"] = True
    _state["sandbox"] = _state["sandbox"] or os.path.realpath(os.getcwd())
    _state["not_user"] = library_folders()
    sys.addaudithook(_hook)


def library_folders() -> tuple[str, ...]:
    """Folders whose code is not the user's: the standard library, site-packages, nnlint itself."""
    own = [os.path.dirname(os.path.dirname(os.path.abspath(__file__)))]
    paths = sysconfig.get_paths()
    library = [paths[k] for k in ("stdlib", "platstdlib", "purelib", "platlib") if paths.get(k)]
    return tuple(os.path.realpath(p) + os.sep for p in own + library)


def _hook(event: str, args: tuple) -> None:
    check = _CHECKS.get(event)
    if check is None:
        return
    attempt = check(args)
    if attempt:
        _attempts.append((attempt, _where()))
        raise Blocked(f"nnlint's sandbox blocked this: {attempt}")


def _inside_sandbox(path) -> bool:
    try:
        path = os.fsdecode(os.fspath(path))
    except TypeError:
        return True  # a file descriptor: already open
    full = os.path.realpath(path)
    return full in _ALLOWED_FILES or full == _state["sandbox"] or full.startswith(_state["sandbox"] + os.sep)


def _show(path) -> str:
    try:
        text = os.fsdecode(os.fspath(path))
    except TypeError:
        return str(path)
    cwd = _state["cwd"]
    if cwd and os.path.isabs(text) and text.startswith(cwd.rstrip(os.sep) + os.sep):
        text = os.path.relpath(text, cwd)
    return text if len(text) <= 60 else "..." + text[-57:]


def _open(args) -> str | None:
    path, mode, flags = (tuple(args) + (None, None))[:3]
    if isinstance(path, int):
        return None
    writes = (flags & _WRITE_FLAGS) if isinstance(flags, int) else any(c in str(mode or "") for c in "wax+")
    if writes and not _inside_sandbox(path):
        return f"writing {_show(path)}"
    return None


def _changes(verb: str, count: int = 1):
    def check(args) -> str | None:
        for path in args[:count]:
            if isinstance(path, (str, bytes, os.PathLike)) and not _inside_sandbox(path):
                return f"{verb} {_show(path)}"
        return None
    return check


def _process(args) -> str:
    return "starting a process"


def _signal(args) -> str | None:
    pid = args[0] if args else None
    if pid in (os.getpid(), 0):
        return None
    return f"sending a signal to process {pid}"


def _getaddrinfo(args) -> str:
    host = args[0] if args else ""
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    return f"network access (looking up {host})"


def _socket_address(verb: str):
    def check(args) -> str:
        address = args[1] if len(args) > 1 else ""
        if isinstance(address, tuple) and len(address) >= 2:
            address = f"{address[0]}:{address[1]}"
        return f"network access ({verb} {address})"
    return check


_CHECKS = {
    "open": _open,
    "os.remove": _changes("deleting"), "os.rmdir": _changes("deleting"), "shutil.rmtree": _changes("deleting"),
    "os.rename": _changes("renaming", 2), "os.mkdir": _changes("creating the folder"),
    "os.symlink": _changes("linking", 2), "os.link": _changes("linking", 2),
    "os.truncate": _changes("truncating"), "os.chmod": _changes("changing the mode of"),
    "os.chown": _changes("changing the owner of"), "os.utime": _changes("touching"),
    "shutil.copyfile": lambda a: _changes("writing", 2)((a[1],)) if len(a) > 1 else None,
    "sqlite3.connect": lambda a: None if a and a[0] in (":memory:", b":memory:") else _changes("writing")(a),
    "socket.connect": _socket_address("connecting to"), "socket.bind": _socket_address("binding"),
    "socket.sendto": _socket_address("sending to"), "socket.sendmsg": _socket_address("sending to"),
    "socket.getaddrinfo": _getaddrinfo, "socket.gethostbyname": _getaddrinfo,
    "socket.gethostbyname_ex": _getaddrinfo, "socket.gethostbyaddr": _getaddrinfo,
    "subprocess.Popen": _process, "os.system": _process, "os.exec": _process, "os.posix_spawn": _process,
    "os.spawn": _process, "os.fork": _process, "os.forkpty": _process, "pty.spawn": _process,
    "os.kill": _signal, "os.killpg": lambda a: f"sending a signal to process group {a[0] if a else '?'}",
}


def _where() -> str:
    """file:line of the innermost frame that belongs to the checked code (not Python, torch or nnlint)."""
    frame: typing.Any = sys._getframe(2)
    not_user = _state.get("not_user", ())
    while frame is not None:
        filename = frame.f_code.co_filename
        if not filename.startswith("<") and not os.path.realpath(filename).startswith(not_user):
            cwd = _state["cwd"]
            if cwd and filename.startswith(cwd.rstrip(os.sep) + os.sep):
                filename = os.path.relpath(filename, cwd)
            return f"{filename}:{frame.f_lineno}"
        frame = frame.f_back
    return ""


# --- answers -----------------------------------------------------------------------------------

def module_loaded() -> None:
    """The checked file's definitions are loaded: attempts so far count for every model of the file."""
    _file_attempts.extend(_attempts)
    _attempts.clear()


def attempted() -> bool:
    """Whether the model being checked attempted a blocked side effect (its answer must not wait)."""
    return bool(_attempts)


def attributing(send):
    """`send` that turns a model's answer into a failure when its code attempted a blocked side effect.

    Attempts made while the module loaded count for every model of the file (a failed load reports
    every model); later ones for the model whose answer comes next.
    """

    def guarded(message: dict) -> None:
        if "model" in message:
            attempts = _file_attempts + _attempts
            _attempts.clear()
            if attempts:
                # No config snippet: the reason already says what to change, on one line.
                message = {"model": message["model"], "ok": False, "reason": blocked_reason(attempts), "snippet": ""}
        elif message.get("done"):
            _file_attempts.clear()
            _attempts.clear()
        send(message)

    return guarded


def _is_network(attempts: list[tuple[str, str]]) -> bool:
    return any(what.startswith("network access") for what, _ in attempts)


def blocked_reason(attempts: list[tuple[str, str]]) -> str:
    """One line: what was blocked first, where, and what to do."""
    more = f" (+{len(attempts) - 1} more)" if len(attempts) > 1 else ""
    if _is_network(attempts):
        what, where = next(a for a in attempts if a[0].startswith("network access"))
        what = _clip(what.removeprefix("network access (").removesuffix(")"), 50)
        return (f"network blocked at {where or '?'}: the constructor tried to download ({what}){more}; "
                "use pretrained=False or weights=None")
    what, where = attempts[0]
    return f"blocked at {where or '?'}: {_clip(what, 70)}{more}; checked code may not change the machine"


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 3] + "..."
