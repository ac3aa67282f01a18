"""The flow's stage servers (stage_server.py): which to start for a run, how long they live,
and the `python` shim that DVC's shell starts for each stage."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from greenpipe.backends.registry import backend_module
from greenpipe.errors import GreenpipeError
from greenpipe.flows import stage_server as server

PYTHONS = {"python", "python3"}


def served_scripts(commands: dict[str, tuple[str, str]]) -> dict[str, list[str]]:
    """{server: [script]} for the stages' commands ({stage: (wdir, cmd)}) that start a Python
    script: a server per framework (--backend), and one for the scripts with none."""
    plan: dict[str, list[str]] = {}
    for wdir, cmd in commands.values():
        argv = shlex.split(cmd) if isinstance(cmd, str) else []
        if len(argv) < 2 or os.path.basename(argv[0]) not in PYTHONS:
            continue
        if argv[1].startswith("-") or not argv[1].endswith(".py"):
            continue
        key = server.backend_in(argv[2:]) or server.BASE
        script = os.path.realpath(os.path.join(wdir, argv[1]))
        plan.setdefault(key, [])
        if script not in plan[key]:
            plan[key].append(script)
    return plan


def python_env() -> dict[str, str]:
    """This process's environment with this interpreter first on PATH (a stage's `python`)."""
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    return env


def enabled() -> bool:
    value = os.environ.get(server.SWITCH_ENV, "on").strip().lower()
    if value not in {"on", "off"}:
        raise GreenpipeError(f"{server.SWITCH_ENV}={value!r}: set it to 'on' or 'off'")
    return value == "on" and os.name == "posix"  # fork and fd passing over Unix sockets


class StageServers:
    """The servers of one flow run: started at once (their imports overlap the flow's own
    set-up), waited for by env() before the first stage, and ended with the run."""

    GRACE_S = 10.0  # how long a server that closed its output unready may take to exit

    def __init__(self, commands: dict[str, tuple[str, str]], env: dict[str, str]):
        self.commands = dict(commands)
        self.plan = served_scripts(commands) if enabled() else {}
        self.folder = tempfile.mkdtemp(prefix="greenpipe-stages-")
        self.procs: dict[str, subprocess.Popen] = {}
        self.started = time.perf_counter()
        self.ready_after_s: float | None = None  # from start until every server was ready
        self.early = False  # started by `greenpipe run` before Prefect (start_early)
        for key, scripts in self.plan.items():
            cmd = [sys.executable, "-m", server.__name__, "serve", self._socket(key)]
            cmd += ["--learn", key]
            cmd += [a for s in scripts for a in ("--script", s)]
            module = backend_module(key) if key != server.BASE else None
            cmd += ["--module", module] if module else []
            self.procs[key] = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, env=env
            )

    def _socket(self, key: str) -> str:
        return os.path.join(self.folder, f"{key}.sock")

    def stage_env(self, env: dict[str, str]) -> dict[str, str]:
        """`env` with the shim first on PATH (unchanged with no server), once every server has
        preloaded; a server that ended before it was ready is an error that names it."""
        if not self.procs:
            return env
        shim = Path(self.folder) / "bin" / "python"
        if self.ready_after_s is None:  # the first call waits; later ones reuse the shim
            for key, proc in self.procs.items():
                if proc.stdout.readline().strip() != b"ready":
                    raise GreenpipeError(
                        f"the stage server for the {key} stages ended before it was ready "
                        f"({self._ended(proc)}); see its error above, or set "
                        f"{server.SWITCH_ENV}=off to start each stage in its own interpreter"
                    )
            self.ready_after_s = time.perf_counter() - self.started
            shim.parent.mkdir()
            shim.write_text(
                "#!/bin/sh\n# greenpipe run: a stage's python, served by a preloaded stage "
                "server\n"
                f'exec {shlex.quote(sys.executable)} -m {server.__name__} run "$@"\n'
            )
            shim.chmod(0o755)
        path = f"{shim.parent}{os.pathsep}{env.get('PATH', '')}"
        return {**env, "PATH": path, server.SOCKETS_ENV: self.folder}

    @classmethod
    def _ended(cls, proc: subprocess.Popen) -> str:
        """How a server that said nothing ended: its exit, or that it closed its output and
        was stopped (never waited on unbounded: the caller is the flow)."""
        try:
            return f"exit {proc.wait(timeout=cls.GRACE_S)}"
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            return "it closed its output unready and was stopped"

    def close(self) -> None:
        for proc in self.procs.values():
            proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            proc.stdout.close()
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> StageServers:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# servers that `greenpipe run` started before it imported Prefect (start_early), for the flow
# that this process runs next to take over (for_flow)
_EARLY: list[StageServers] = []


def start_early(commands: dict[str, tuple[str, str]]) -> StageServers:
    """The stage servers of a run, started by `greenpipe run` before it imports Prefect and
    starts Prefect's temporary API server: both take one core for 5-10 s, and the servers'
    imports take the other, instead of starting only when the flow run has begun. The flow
    in this process takes them over (for_flow); the caller closes them (a no-op if the flow
    did) when the flow has returned or failed."""
    servers = StageServers(commands, python_env())
    servers.early = True
    _EARLY.append(servers)
    return servers


def for_flow(commands: dict[str, tuple[str, str]]) -> StageServers:
    """The servers this process started early for exactly these stage commands (the flow's
    own plan), or new ones; early servers started for other commands are ended."""
    while _EARLY:
        servers = _EARLY.pop()
        if servers.commands == dict(commands):
            return servers
        servers.close()
    return StageServers(commands, python_env())
