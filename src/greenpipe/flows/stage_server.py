"""Stage servers: under `greenpipe run`, a stage's process is a fork of one that has already
imported what the stage imports, instead of a fresh interpreter that imports it all again.

Why: a fresh interpreter costs each stage 1.4-3.9 s before its work starts here (Python,
NumPy, pydantic, greenpipe's config, CodeCarbon, the stage's own libraries, and its framework:
torch 2-5 s, TensorFlow 6-16 s), which one long-lived process pays once (issue 17).

DVC is unchanged: it still runs each stage's command from dvc.yaml (`python pipelines/train.py
...`) under its shell, hashes the deps and outs, and writes dvc.lock. The flow only puts a
folder first on the stages' PATH whose `python` is a shim (`python -m
greenpipe.flows.stage_server run ARGS`). For a script a server preloaded, the shim sends its
command line, working directory, environment and standard streams (the file descriptors
themselves, over a Unix socket) to the server of the command's framework (its `--backend`, or
none). The server forks a waiter, the waiter forks the stage, which runs the script as
`__main__` with that argv, cwd, environment and streams, and the waiter reports how the stage
ended. The shim exits with the stage's status, or dies of the stage's signal, so DVC, the flow
and the user see what a fresh interpreter would have given. Any other `python` command is
exec'ed unchanged.

A server imports the top-level imports of its scripts (read with `ast`: the scripts do not
run), CodeCarbon and the stage context's libraries, and the framework's backend module. It
never runs a framework op or touches a device before it forks: OpenMP's thread pools and CUDA
contexts do not survive a fork (neither is created by importing torch or TensorFlow). The flow
waits until every server is ready before the first stage, so no import runs inside a stage's
energy window. A stage's own lazy imports (inside functions: a backend's optimiser, ONNX,
scikit-learn) are learned: a stage that ended well adds what it imported beyond its server's
modules to learned_file(key), and the next server of that key imports them too.
GREENPIPE_STAGE_SERVER=off starts each stage in its own interpreter, as plain
`dvc repro` does.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import sys
from pathlib import Path

from greenpipe.cache import cache_dir

SOCKETS_ENV = "GREENPIPE_STAGE_SERVERS"  # the folder of the servers' sockets, in a stage's env
SWITCH_ENV = "GREENPIPE_STAGE_SERVER"  # "off": every stage starts its own interpreter
PRELOADED_ENV = "GREENPIPE_PRELOADED_RSS_MB"  # set in a served stage: its server's resident MiB
BASE = "base"  # the server of the stages with no --backend
# what every stage imports besides its script's own imports: the stage context, CodeCarbon
# (imported lazily when the meter starts) and what it reads the hardware with
COMMON = (
    "numpy",
    "greenpipe.entry",
    "greenpipe.tracking.stage",
    "codecarbon",
    "cpuinfo",
    "psutil",
)
_HEADER = struct.Struct("!I")
# set in a server before it forks: what it imported, and where its stages add what they import
_preloaded: frozenset[str] = frozenset()
_learned_path: str | None = None


def backend_in(argv: list[str]) -> str | None:
    """The value of a command line's --backend (dvc.yaml's foreach stages), or None."""
    for i, arg in enumerate(argv):
        if arg == "--backend" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--backend="):
            return arg.partition("=")[2]
    return None


# -- the shim's side: the `python` that DVC's shell starts for a stage ----------------------


def served_socket(argv: list[str], environ=os.environ) -> str | None:
    """The socket of the server for `python ARGV`, or None if no server preloaded it."""
    folder = environ.get(SOCKETS_ENV)
    if not folder or not argv or argv[0].startswith("-") or not argv[0].endswith(".py"):
        return None
    path = os.path.join(folder, f"{backend_in(argv) or BASE}.sock")
    return path if os.path.exists(path) else None


def _send(conn: socket.socket, message: dict) -> None:
    conn.sendall(json.dumps(message).encode() + b"\n")


def delegate(path: str, argv: list[str]) -> dict | None:
    """Have the server at `path` run `python ARGV` as this process would: {"exit": n} or
    {"signal": n} when it ends, or None if the server does not serve the script."""
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(path)
    except OSError as exc:
        print(f"greenpipe: cannot reach the stage server at {path} ({exc})", file=sys.stderr)
        return _lost(path, None)
    body = json.dumps(
        {
            "script": os.path.realpath(argv[0]),
            "argv": argv,
            "cwd": os.getcwd(),
            "env": dict(os.environ),
        }
    ).encode()
    socket.send_fds(conn, [_HEADER.pack(len(body)) + body], [0, 1, 2])
    replies = conn.makefile("rb")
    first = json.loads(replies.readline() or b'{"lost": true}')
    if "decline" in first:
        return None
    if "pid" not in first:
        return _lost(path, None)
    pid = first["pid"]
    # a signal sent to this process is meant for the stage; Ctrl-C reaches the stage itself,
    # which is in the same process group
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(sig, lambda n, _f: os.kill(pid, n))
    line = replies.readline()
    return json.loads(line) if line else _lost(path, pid)


def _lost(path: str, pid: int | None) -> dict:
    print(
        f"greenpipe: the stage server at {path} ended before it reported how stage process "
        f"{pid} ended; set {SWITCH_ENV}=off to start each stage in its own interpreter",
        file=sys.stderr,
    )
    return {"exit": 1}


def end_as(status: dict) -> None:
    """Exit with the stage's exit status, or die of the signal that ended it."""
    sys.stdout.flush()
    sys.stderr.flush()
    if "signal" in status:
        sig = status["signal"]
        if sig not in (signal.SIGKILL, signal.SIGSTOP):
            signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)
        os._exit(128 + sig)  # a signal that does not end a process by default
    os._exit(status["exit"])


def shim_main(argv: list[str]) -> None:
    """`python ARGV` for a stage: served if a server preloaded the script, else exec'ed."""
    path = served_socket(argv)
    if path is not None:
        status = delegate(path, argv)
        if status is not None:
            end_as(status)
    os.execv(sys.executable, [sys.executable, *argv])


# -- the server's side --------------------------------------------------------------------


def _receive(conn: socket.socket) -> tuple[dict, list[int]]:
    data, fds, _flags, _addr = socket.recv_fds(conn, 65536, 3)
    while len(data) < _HEADER.size:
        data += conn.recv(65536)
    (size,) = _HEADER.unpack_from(data)
    while len(data) < _HEADER.size + size:
        more = conn.recv(65536)
        if not more:
            raise ConnectionError("the shim closed its connection mid-request")
        data += more
    return json.loads(data[_HEADER.size : _HEADER.size + size]), fds


def _exit_code(code) -> int:
    """What the interpreter exits with for SystemExit(code)."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1


def _stage_env(env: dict[str, str]) -> dict[str, str]:
    """The stage's environment as it would be without the server: no shim on PATH."""
    env = dict(env)
    shim = env.pop(SOCKETS_ENV, None)
    if shim:
        parts = env.get("PATH", "").split(os.pathsep)
        env["PATH"] = os.pathsep.join(p for p in parts if p != os.path.join(shim, "bin"))
    return env


def _resident_mb() -> float | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def _reset_peak() -> None:
    """Restart the process's resident high-water mark (VmHWM) from now (Linux >= 4.0): the
    stage's peak is its own, not its server's."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def _run_as_main(path: str) -> None:
    """Run the script as the interpreter runs `python PATH`: as the module __main__ (which
    stays in sys.modules, for pickling and atexit handlers), with an absolute __file__."""
    import builtins
    import importlib.machinery
    import types

    with open(path, "rb") as f:
        code = compile(f.read(), path, "exec")
    main = types.ModuleType("__main__")
    loader = importlib.machinery.SourceFileLoader("__main__", path)
    main.__dict__.update(__file__=path, __builtins__=builtins, __loader__=loader)
    sys.modules["__main__"] = main
    exec(code, main.__dict__)  # noqa: S102 - the stage's own script, as `python` runs it


def _become_stage(request: dict, fds: list[int]) -> None:
    """In the forked stage process: take on the shim's streams, cwd, env and argv, run the
    script as __main__, and exit as the interpreter would have."""
    import threading
    import traceback

    code = 1
    try:
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        for sig in (signal.SIGTERM, signal.SIGCHLD, signal.SIGHUP, signal.SIGQUIT):
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        os.chdir(request["cwd"])
        env = _stage_env(request["env"])
        preloaded = _resident_mb()
        if preloaded is not None:
            env[PRELOADED_ENV] = f"{preloaded:.1f}"
        os.environ.clear()
        os.environ.update(env)
        sys.argv = list(request["argv"])
        sys.path[0] = os.path.dirname(request["script"])
        sys.stdout.reconfigure(line_buffering=os.isatty(1))
        _reset_peak()
        try:
            _run_as_main(os.path.abspath(sys.argv[0]))
            code = 0
        except SystemExit as exc:
            code = _exit_code(exc.code)
        except KeyboardInterrupt:
            traceback.print_exc()
            code = -signal.SIGINT
        except BaseException:
            sys.excepthook(*sys.exc_info())
            code = 1
        threading._shutdown()  # noqa: SLF001 - what the interpreter does at exit: join threads
        import atexit

        atexit._run_exitfuncs()  # noqa: SLF001 - the stage's atexit handlers, as at exit
        if code == 0 and _learned_path:
            try:
                learn(Path(_learned_path), _preloaded)
            except OSError as exc:  # the stage's outputs stand; its next server imports less
                print(
                    f"greenpipe: could not save the stage's imports to {_learned_path}: {exc}",
                    file=sys.stderr,
                )
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        if code < 0:  # died of SIGINT, as an interpreter does on an uncaught KeyboardInterrupt
            signal.signal(-code, signal.SIG_DFL)
            os.kill(os.getpid(), -code)
        os._exit(code)


def _wait_for(pid: int) -> dict:
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        return {"signal": os.WTERMSIG(status)}
    return {"exit": os.waitstatus_to_exitcode(status)}


def _serve_one(conn: socket.socket, listener: socket.socket, scripts: set[str]) -> None:
    """One request: a waiter is forked, which forks the stage and reports its end."""
    request, fds = _receive(conn)
    if request["script"] not in scripts:
        _send(conn, {"decline": request["script"]})
        for fd in fds:
            os.close(fd)
        return
    sys.stdout.flush()
    sys.stderr.flush()
    if os.fork() != 0:  # the server: back to accepting (the kernel reaps the waiter)
        for fd in fds:
            os.close(fd)
        return
    try:  # the waiter
        listener.close()
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        pid = os.fork()
        if pid == 0:
            conn.close()
            _become_stage(request, fds)
        for fd in fds:
            os.close(fd)
        _send(conn, {"pid": pid})
        _send(conn, _wait_for(pid))
    finally:
        os._exit(0)


def learned_file(key: str) -> Path:
    """Where the modules that a server's stages imported themselves are kept, for this
    interpreter's next server of that key (a stage's lazy imports: a backend's optimiser,
    ONNX, scikit-learn, which its script does not import at its top level)."""
    import hashlib

    tag = hashlib.sha256(f"{sys.executable}\0{sys.prefix}".encode()).hexdigest()[:12]
    return cache_dir() / "stage-imports" / tag / f"{key}.json"


def learned(path: Path) -> list[str]:
    """The module names in a learned file ([] if it is missing or unreadable)."""
    try:
        names = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    return [n for n in names if isinstance(n, str)] if isinstance(names, list) else []


def _learnable(name: str) -> bool:
    """A module any server of this interpreter imports as the stage did: built in, or from
    the interpreter's own installation or greenpipe's package. Not a repo's own module (a
    server elsewhere could find another file of that name), not __main__ or TensorFlow's
    autograph files, not one made at run time (no origin)."""
    spec = getattr(sys.modules.get(name), "__spec__", None)
    origin = getattr(spec, "origin", None)
    if name.startswith("__") or not origin:
        return False
    if origin in ("built-in", "frozen"):
        return True
    homes = {sys.prefix, sys.base_prefix, os.path.dirname(os.path.dirname(__file__))}
    return any(origin.startswith(os.path.join(home, "")) for home in homes)


def learn(path: Path, preloaded: frozenset[str]) -> list[str]:
    """In a stage that ended: add the modules it imported beyond its server's to the learned
    file (an atomic replace; concurrent stages may drop each other's additions, learned at
    their next run). Returns the names added."""
    known = set(learned(path))
    new = sorted(n for n in list(sys.modules) if n not in preloaded and n not in known)
    new = [n for n in new if _learnable(n)]
    if new:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            tmp.write_text(json.dumps(sorted(known.union(new))))
            os.replace(tmp, path)
        finally:  # a failed write leaves no temporary file behind
            tmp.unlink(missing_ok=True)
    return new


def imports_of(script: str) -> list[str]:
    """The modules a script imports at its top level (read, not run)."""
    import ast

    with open(script) as f:
        tree = ast.parse(f.read(), script)
    names: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module != "__future__":
            names.append(node.module)
            names += [f"{node.module}.{alias.name}" for alias in node.names]
    return names


def preload(modules: list[str]) -> list[str]:
    """Import each module (a `from m import name` target may be a submodule or not); the
    ones that fail to import are left to fail in the stage itself, with its own error."""
    import importlib

    failed = []
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError:
            if "." not in name or name.rpartition(".")[0] not in sys.modules:
                failed.append(name)
        except Exception:  # noqa: BLE001 - the stage will raise it, as its own error
            failed.append(name)
    return failed


def serve(path: str, scripts: list[str], modules: list[str], key: str | None = None) -> None:
    """Preload, say "ready" on stdout, then serve stages until the flow that started this
    server ends (it terminates the server; a server whose flow died ends by itself).
    With `key`, it also preloads what its key's stages imported themselves before (learned
    from them as they end: learned_file)."""
    global _preloaded, _learned_path
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # Ctrl-C: the server ends quietly
    parent = os.getppid()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(16)
    wanted = [*COMMON, *(m for s in scripts for m in imports_of(s)), *modules]
    if key:
        _learned_path = str(learned_file(key))
        wanted += learned(Path(_learned_path))
    # what a module prints as it is imported goes to stderr: stdout is the flow's pipe,
    # which must read "ready" first
    stdout = os.dup(1)
    os.dup2(2, 1)
    try:
        preload(list(dict.fromkeys(wanted)))
    finally:
        sys.stdout.flush()
        os.dup2(stdout, 1)
        os.close(stdout)
    _preloaded = frozenset(sys.modules)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)  # nothing more for the flow's pipe
    os.close(devnull)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # waiters are reaped by the kernel
    listener.settimeout(1.0)
    while os.getppid() == parent:
        try:
            conn, _ = listener.accept()
        except TimeoutError:
            continue
        with conn:
            conn.settimeout(None)
            _serve_one(conn, listener, set(scripts))


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["run"]:
        shim_main(args[1:])
    elif args[:1] == ["serve"]:
        import argparse

        p = argparse.ArgumentParser(prog="python -m greenpipe.flows.stage_server serve")
        p.add_argument("socket")
        p.add_argument("--script", action="append", default=[])
        p.add_argument("--module", action="append", default=[])
        p.add_argument("--learn", metavar="KEY", help="preload and learn KEY's stages' imports")
        ns = p.parse_args(args[1:])
        serve(ns.socket, [os.path.realpath(s) for s in ns.script], ns.module, ns.learn)
    else:
        sys.exit("usage: python -m greenpipe.flows.stage_server {run ARGS | serve SOCKET ...}")


if __name__ == "__main__":
    main()
