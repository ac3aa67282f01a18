"""`greenpipe serve` against a real Prefect server on 127.0.0.1: the deployment is listed with
its cron schedule, and a run triggered from it completes."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

# one worker runs the modules that share the session workspace (pytest -n ... --dist loadgroup)
pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("shared-workspace")]


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
    bin_dir = Path(sys.executable).parent
    server = subprocess.Popen(
        [str(bin_dir / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
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


def test_deployment_is_scheduled_and_a_triggered_run_completes(workspace, prefect_server):
    api = prefect_server
    raw = workspace.params()
    raw["train"]["backends"] = ["torch"]
    workspace.write_params(raw)
    workspace.run("dvc", "repro")  # the served run then finds the stages cached: quick
    env = {**workspace.env, "PREFECT_API_URL": api}
    bin_dir = Path(sys.executable).parent
    log_path = workspace.path.parent / "serve.log"
    log = log_path.open("w")
    serving = subprocess.Popen(
        [str(bin_dir / "greenpipe"), "serve", "--cron", "0 3 * * *", "--name", "nightly"],
        cwd=workspace.path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        dep = _wait(
            lambda: (
                (r := _get(f"{api}/deployments/name/greenpipe-experiment/nightly")) is not None
                and r.status_code == 200
                and r.json()
            ),
            180,
            "the deployment",
        )
        schedules = [s["schedule"].get("cron") for s in dep.get("schedules", [])]
        assert schedules == ["0 3 * * *"]
        run = httpx.post(
            f"{api}/deployments/{dep['id']}/create_flow_run", json={}, timeout=30
        ).json()

        def finished(run_id: str):
            state = httpx.get(f"{api}/flow_runs/{run_id}", timeout=10).json()["state"]
            return state if state["type"] in ("COMPLETED", "FAILED", "CRASHED") else None

        state = _wait(lambda: finished(run["id"]), 600, "the triggered flow run")
        assert state["type"] == "COMPLETED", state
        tasks = httpx.post(
            f"{api}/task_runs/filter", json={"flow_runs": {"id": {"any_": [run["id"]]}}}, timeout=30
        ).json()
        assert {t["name"] for t in tasks} >= {"prepare", "train@torch", "report"}
        assert {t["state"]["name"] for t in tasks} == {"Cached"}
        _a_failing_served_run_is_one_line(workspace, api, dep["id"], finished, log_path)
    finally:
        serving.terminate()
        serving.wait(timeout=60)
        log.close()


def _a_failing_served_run_is_one_line(workspace, api, dep_id, finished, log_path) -> None:
    """A served run whose stage fails: the serve process shows that stage's one-line error,
    Prefect's log lines without their traceback."""
    good = workspace.params()
    raw = {**good, "data": {**good["data"], "source": "npz", "path": "inputs/broken.npz"}}
    (workspace.path / "inputs" / "broken.npz").write_text("not an npz")
    workspace.write_params(raw)
    try:
        run = httpx.post(f"{api}/deployments/{dep_id}/create_flow_run", json={}, timeout=30)
        state = _wait(lambda: finished(run.json()["id"]), 600, "the failing flow run")
    finally:
        workspace.write_params(good)
        (workspace.path / "inputs" / "broken.npz").unlink()
    assert state["type"] == "FAILED", state
    out = log_path.read_text()
    assert "stage 'prepare' failed (exit 1): data.path 'inputs/broken.npz'" in out, out[-3000:]
    assert "Traceback" not in out, out[-5000:]
