"""`greenpipe sweep --address` on a real Dask cluster: a `dask scheduler` and two `dask worker`
processes on 127.0.0.1, started as a user would (from the venv, no PYTHONPATH, outside the
repo). The variants run on those workers; once the workers (one stopped, one killed) and the
scheduler are gone, no process any of them started (a Prefect server in a worker, a dvc
process) is left running."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psutil
import pytest

# one worker runs the modules that share the session workspace (pytest -n ... --dist loadgroup)
pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("shared-workspace")]

BIN = Path(sys.executable).parent
TAG = "GREENPIPE_E2E_PROCESS_TAG"  # every process the test starts, and their children, carry it

# evaluate and report only: machine mode as the baseline was measured, so the stages before
# evaluate stay up to date in each variant's temporary workspace (the cheapest sweep there is)
PLAN = """\
name: cluster
base: {tracking.codecarbon_mode: machine}
grid:
  evaluate.bootstrap_samples: [110, 120]
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tagged(tag: str) -> list[psutil.Process]:
    """Live processes whose environment carries the test's tag (orphans included)."""
    found = []
    for p in psutil.process_iter():
        with contextlib.suppress(psutil.Error):
            if p.environ().get(TAG) == tag and p.status() != psutil.STATUS_ZOMBIE:
                found.append(p)
    return found


def _describe(procs: list[psutil.Process]) -> list[str]:
    out = []
    for p in procs:
        with contextlib.suppress(psutil.Error):
            out.append(f"{p.pid}: {' '.join(p.cmdline())[:160]}")
    return out


class Cluster:
    """A scheduler and workers as separate processes. stop() stops them as they end in real
    life, one process each (never its group): worker-1 by SIGTERM (a clean stop), worker-2 by
    SIGKILL (an OOM kill, a preempted node), the scheduler by SIGTERM."""

    def __init__(self, base: Path, env: dict[str, str]) -> None:
        self.base, self.env, self.procs = base, env, {}
        self.address = f"tcp://127.0.0.1:{_free_port()}"

    def start(self, name: str, *args: str) -> None:
        log = (self.base / f"{name}.log").open("w")
        self.procs[name] = subprocess.Popen(
            [str(BIN / "dask"), *args, "--no-dashboard"],
            cwd=self.base,  # not the repo: nothing is importable from the working directory
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def log(self, name: str) -> str:
        return (self.base / f"{name}.log").read_text()

    def stop(self) -> None:
        for name in sorted(self.procs, key=lambda n: n == "scheduler"):  # workers first
            proc = self.procs[name]
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGKILL if name == "worker-2" else signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)

    def servers(self) -> list[str]:
        """Prefect or uvicorn servers among the workers' descendants (a worker must not start
        one: it would be orphaned when the worker is killed)."""
        found = []
        for name, proc in self.procs.items():
            with contextlib.suppress(psutil.Error):
                for child in psutil.Process(proc.pid).children(recursive=True):
                    cmd = " ".join(child.cmdline())
                    if "uvicorn" in cmd or "prefect" in cmd:
                        found.append(f"{name}: {child.pid}: {cmd[:160]}")
        return found

    def kill_all(self) -> None:
        for proc in self.procs.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)


def _wait_workers(address: str, n: int) -> None:
    from distributed import Client

    with Client(address, timeout="60s") as client:  # the scheduler answers
        if n:
            client.wait_for_workers(n, timeout=180)


def _without_repos(pythonpath: str) -> str:
    """PYTHONPATH without a repo root (a folder with flows/): the tasks must come from the
    installed package, as they do for a user who sets no PYTHONPATH."""
    return os.pathsep.join(
        p for p in pythonpath.split(os.pathsep) if p and not (Path(p) / "flows").is_dir()
    )


def _run(ws, env: dict[str, str], cmd: list[str], timeout: int = 300):
    return subprocess.run(
        cmd, cwd=ws.path, env=env, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def cluster_ws(workspace):
    raw = workspace.params()
    raw["train"]["backends"] = ["torch"]
    workspace.write_params(raw)
    (workspace.path / "plans" / "cluster.yaml").write_text(PLAN)
    workspace.run("dvc", "repro")  # the baseline the variants start from
    workspace.run("git", "add", "-A")
    workspace.run("git", "commit", "-qm", "cluster plan and baseline", check=False)
    return workspace


@pytest.mark.timeout(900)
def test_sweep_on_a_real_dask_cluster_leaves_no_process(cluster_ws, tmp_path):
    tag = uuid.uuid4().hex
    env = {k: v for k, v in cluster_ws.env.items() if k != "PREFECT_API_URL"}
    env[TAG] = tag
    env["PYTHONPATH"] = _without_repos(env.get("PYTHONPATH", ""))
    cluster = Cluster(tmp_path, env)
    sweep = ["greenpipe", "sweep", "plans/cluster.yaml", "--address", cluster.address]
    try:
        cluster.start("scheduler", "scheduler", "--host", "127.0.0.1", "--port",
                      cluster.address.rsplit(":", 1)[1])  # fmt: skip
        _wait_workers(cluster.address, 0)
        # no worker yet: refused up front, in one line that says what to start
        early = _run(cluster_ws, env, sweep)
        assert early.returncode == 2, early.stdout + early.stderr
        assert "has no workers; start `dask worker" in early.stderr.strip().splitlines()[-1]
        for name in ("worker-1", "worker-2"):
            cluster.start(name, "worker", cluster.address, "--nthreads", "1", "--name", name)
        _wait_workers(cluster.address, 2)

        proc = _run(cluster_ws, env, sweep, timeout=800)
        out = proc.stdout[-3000:] + proc.stderr[-5000:]
        assert proc.returncode == 0, out
        assert "2 Dask worker(s) at" in proc.stderr, out
        assert "2/2 variants ok" in proc.stdout, out
        sweep_id = proc.stdout.split("sweep ", 1)[1].split(":", 1)[0]
        parents = [r for r in cluster_ws.runs() if r.data.tags.get("greenpipe.sweep") == sweep_id]
        assert sorted(p.info.status for p in parents) == ["FINISHED", "FINISHED"]
        assert sorted(int(p.data.params["evaluate.bootstrap_samples"]) for p in parents) == [
            110,
            120,
        ]
        # the variants ran in the workers (their Prefect task logs are in the workers' logs)
        worker_logs = cluster.log("worker-1") + cluster.log("worker-2")
        assert worker_logs.count("Finished in state Completed()") >= 2, worker_logs[-3000:]
        assert "ModuleNotFoundError" not in worker_logs + cluster.log("scheduler")

        assert cluster.servers() == [], "a worker started a Prefect server of its own"

        cluster.stop()
        deadline = time.monotonic() + 20  # the workers' own children exit after them
        while (left := _tagged(tag)) and time.monotonic() < deadline:
            time.sleep(1)
        assert not left, f"left running after the sweep and its cluster: {_describe(left)}"
    finally:
        cluster.kill_all()
        for p in _tagged(tag):
            with contextlib.suppress(psutil.Error):
                p.kill()
