"""`greenpipe serve` against a real Prefect server on 127.0.0.1: the deployment is listed with
its cron schedule, and a run triggered from it completes."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

# one worker runs the modules that share the session workspace (pytest -n ... --dist loadgroup)
pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("shared-workspace")]


BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(predicate, timeout: float, what: str):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(1)
    raise AssertionError(f"timed out waiting for {what}")


def _get(url: str):
    try:
        return httpx.get(url, timeout=5)
    except httpx.HTTPError:
        return None


@pytest.fixture(scope="module")
def prefect_server(workspace):
    port = _free_port()
    env = {**workspace.env}
    env.pop("PREFECT_API_URL", None)
    server = subprocess.Popen(
        [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        cwd=workspace.path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    api = f"http://127.0.0.1:{port}/api"
    try:
        _wait(
            lambda: (r := _get(f"{api}/health")) is not None and r.status_code == 200,
            180,
            "the Prefect server",
        )
        yield api
    finally:
        server.terminate()
        server.wait(timeout=60)


def _finished(api: str, run_id: str):
    state = httpx.get(f"{api}/flow_runs/{run_id}", timeout=10).json()["state"]
    return state if state["type"] in ("COMPLETED", "FAILED", "CRASHED") else None


def _run_deployment(api: str, dep_id: str, parameters: dict | None = None, what: str = "run"):
    """Trigger a run of the deployment and wait for its final state."""
    body = {"parameters": parameters} if parameters else {}
    for _ in range(10):  # 503: the server's SQLite was busy (Prefect's own client retries it)
        run = httpx.post(f"{api}/deployments/{dep_id}/create_flow_run", json=body, timeout=30)
        if run.status_code != 503:
            break
        time.sleep(2)
    assert run.status_code < 300, run.text
    run_id = run.json()["id"]
    return run_id, _wait(lambda: _finished(api, run_id), 600, f"the {what} flow run")


def _tasks(api: str, run_id: str) -> list[dict]:
    body = {"flow_runs": {"id": {"any_": [run_id]}}}
    return httpx.post(f"{api}/task_runs/filter", json=body, timeout=30).json()


def _deployment(api: str, name: str) -> dict:
    return _wait(
        lambda: (
            (r := _get(f"{api}/deployments/name/greenpipe-experiment/{name}")) is not None
            and r.status_code == 200
            and r.json()
        ),
        180,
        f"the deployment {name}",
    )


def _another_repo(base: Path) -> Path:
    """A folder with a dvc.yaml and params.yaml: what a run on another root would work on."""
    other = base / "other-repo"
    other.mkdir(exist_ok=True)
    for name in ("dvc.yaml", "params.yaml"):
        (other / name).write_text((base / "repo" / name).read_text())
    return other


@pytest.fixture(scope="module")
def served(workspace, prefect_server):
    """`greenpipe serve` of the workspace (torch only, every stage up to date): yields the
    API, the deployment and the serve process's log."""
    api = prefect_server
    raw = workspace.params()
    raw["train"]["backends"] = ["torch"]
    workspace.write_params(raw)
    workspace.run("dvc", "repro")  # the served run then finds the stages cached: quick
    env = {**workspace.env, "PREFECT_API_URL": api}
    log_path = workspace.path.parent / "serve.log"
    log = log_path.open("w")
    serving = subprocess.Popen(
        [str(BIN / "greenpipe"), "serve", "--cron", "0 3 * * *", "--name", "nightly"],
        cwd=workspace.path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield api, _deployment(api, "nightly"), log_path
    finally:
        serving.terminate()
        serving.wait(timeout=60)
        log.close()


def test_deployment_is_scheduled_and_a_triggered_run_completes(workspace, served):
    api, dep, log_path = served
    schedules = [s["schedule"].get("cron") for s in dep.get("schedules", [])]
    assert schedules == ["0 3 * * *"]
    run_id, state = _run_deployment(api, dep["id"], what="triggered")
    assert state["type"] == "COMPLETED", state
    tasks = _tasks(api, run_id)
    assert {t["name"] for t in tasks} >= {"prepare", "train@torch", "report"}
    assert {t["state"]["name"] for t in tasks} == {"Cached"}
    _a_failing_served_run_is_one_line(workspace, api, dep["id"], log_path)


def test_a_served_run_on_another_root_is_refused(workspace, served):
    """Whoever reaches the Prefect API may run the served repo's experiment, and nothing else:
    a run asking for another folder with a dvc.yaml fails with one clear line, and nothing
    runs there."""
    api, dep, log_path = served
    other = _another_repo(workspace.path.parent)
    run_id, state = _run_deployment(api, dep["id"], {"root": str(other)}, "other-root")
    assert state["type"] == "FAILED", state
    assert f"root '{other}' refused" in state["message"], state
    assert f"runs on {workspace.path} only" in state["message"], state
    assert _tasks(api, run_id) == []
    assert sorted(p.name for p in other.iterdir()) == ["dvc.yaml", "params.yaml"]
    out = log_path.read_text()
    assert f"root '{other}' refused" in out and "Traceback" not in out, out[-3000:]


def _a_failing_served_run_is_one_line(workspace, api, dep_id, log_path) -> None:
    """A served run whose stage fails: the serve process shows that stage's one-line error,
    Prefect's log lines without their traceback."""
    good = workspace.params()
    raw = {**good, "data": {**good["data"], "source": "npz", "path": "inputs/broken.npz"}}
    (workspace.path / "inputs" / "broken.npz").write_text("not an npz")
    workspace.write_params(raw)
    try:
        _, state = _run_deployment(api, dep_id, what="failing")
    finally:
        workspace.write_params(good)
        (workspace.path / "inputs" / "broken.npz").unlink()
    assert state["type"] == "FAILED", state
    out = log_path.read_text()
    assert "stage 'prepare' failed (exit 1): data.path 'inputs/broken.npz'" in out, out[-3000:]
    assert "Traceback" not in out, out[-5000:]


def _prefect(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [str(BIN / "prefect"), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=180
    )
    assert proc.returncode == 0, f"prefect {args}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


TAG = "GREENPIPE_E2E_PROCESS_TAG"  # in the environment of what a test starts, and its children


def _tagged(tag: str) -> list[str]:
    """Live processes that carry the tag (orphans included), as 'pid: command'."""
    import psutil

    found = []
    for p in psutil.process_iter():
        with contextlib.suppress(psutil.Error):
            if p.environ().get(TAG) == tag and p.status() != psutil.STATUS_ZOMBIE:
                found.append(f"{p.pid}: {' '.join(p.cmdline())[:160]}")
    return found


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM to the process itself (as Ctrl-C or a service manager would), not its group."""
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def test_work_pool_deployment_runs_on_a_process_worker(workspace, prefect_server, tmp_path):
    """The README's team set-up, one step beyond serve: a `process` work pool, the experiment
    flow deployed to it from its file entry point, `prefect worker start` running the runs;
    a run asking for another root is refused there too."""
    api = prefect_server
    tag = uuid.uuid4().hex
    env = {**workspace.env, "PREFECT_API_URL": api, "PREFECT_WORKER_QUERY_SECONDS": "2", TAG: tag}
    raw = workspace.params()
    raw["train"]["backends"] = ["torch"]
    workspace.write_params(raw)
    workspace.run("dvc", "repro")  # every stage up to date: the pooled run is quick
    _prefect(env, workspace.path, "work-pool", "create", "greenpipe-e2e", "--type", "process")
    _prefect(
        env,
        workspace.path,
        "--no-prompt",
        "deploy",
        "flows/experiment.py:experiment",
        "--name",
        "pooled",
        "--pool",
        "greenpipe-e2e",
        "--cron",
        "0 4 * * *",
    )
    dep = _deployment(api, "pooled")
    assert dep["entrypoint"] == "flows/experiment.py:experiment", dep
    assert dep["work_pool_name"] == "greenpipe-e2e", dep
    assert [s["schedule"].get("cron") for s in dep["schedules"]] == ["0 4 * * *"]
    log_path = tmp_path / "worker.log"
    with log_path.open("w") as log:
        worker = subprocess.Popen(
            [str(BIN / "prefect"), "worker", "start", "--pool", "greenpipe-e2e"],
            cwd=tmp_path,  # the deployment's pull step sets the repo as working directory
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            ran = _prefect(env, tmp_path, "deployment", "run", "greenpipe-experiment/pooled")
            run_id = re.search(r"UUID: ([0-9a-f-]{36})", ran.stdout).group(1)
            state = _wait(lambda: _finished(api, run_id), 600, "the pooled flow run")
            assert state["type"] == "COMPLETED", (state, log_path.read_text()[-3000:])
            run = httpx.get(f"{api}/flow_runs/{run_id}", timeout=10).json()
            assert run["work_pool_name"] == "greenpipe-e2e"
            tasks = _tasks(api, run_id)
            assert {t["name"] for t in tasks} >= {"prepare", "train@torch", "report"}
            assert {t["state"]["name"] for t in tasks} == {"Cached"}
            other = _another_repo(workspace.path.parent)
            _, state = _run_deployment(api, dep["id"], {"root": str(other)}, "pooled other-root")
            assert state["type"] == "FAILED" and f"root '{other}' refused" in state["message"]
        finally:
            _stop(worker)
            time.sleep(2)  # an orphan outlives its parent: give it the chance to show
            left = _tagged(tag)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(worker.pid, signal.SIGKILL)
    assert left == [], f"outlived the Prefect worker: {left}"
