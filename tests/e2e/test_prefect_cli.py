"""`prefect deployment ls` and `prefect flow-run ls` against a real `prefect server start`.

The CLI sends `"limit": null` in its filter bodies; fastapi 0.151+ validates that null against the
server's `limit: int = Body(None)` and answers 422 (hence the `fastapi<0.151` pin). The Prefect UI
omits the field, so only the CLI shows it."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("prefect_cli")]

BIN = Path(sys.executable).parent
FLOW = "greenpipe-cli-probe"
FLOW_RUN = "cli-probe-run"
DEPLOYMENT = "cli-probe-deployment"

PROBE = textwrap.dedent(
    f"""
    from prefect import flow

    @flow(name={FLOW!r}, flow_run_name={FLOW_RUN!r})
    def probe() -> int:
        return 1

    if __name__ == "__main__":
        probe()
        probe.to_deployment(name={DEPLOYMENT!r}).apply()
    """
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _healthy(url: str) -> bool:
    try:
        return httpx.get(url, timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def _stop(server: subprocess.Popen) -> None:
    """Stop the server's whole process group: SIGTERM, then SIGKILL for whatever is left."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        server.wait(timeout=20)
    # the leader may be gone while children of its group (uvicorn, services) are not
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.pid, signal.SIGKILL)
    server.wait(timeout=10)


def _run(cmd: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def prefect_api(tmp_path_factory):
    """A real Prefect server with one completed flow run and one deployment; yields the client
    environment (PREFECT_API_URL set) and a working directory."""
    home = tmp_path_factory.mktemp("prefect-cli")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        {
            "PREFECT_HOME": str(home / "prefect"),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            # rich tables are 80 columns wide off a terminal and would truncate names
            "COLUMNS": "200",
        }
    )
    log = (home / "server.log").open("w")
    server = subprocess.Popen(
        [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        cwd=home,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    api = f"http://127.0.0.1:{port}/api"
    try:
        deadline = time.monotonic() + 150
        while not _healthy(f"{api}/health"):
            if server.poll() is not None or time.monotonic() > deadline:
                log.flush()
                raise AssertionError(
                    f"Prefect server not healthy (exit {server.poll()}):\n"
                    + (home / "server.log").read_text()[-3000:]
                )
            time.sleep(1)
        client_env = {**env, "PREFECT_API_URL": api}
        (home / "probe.py").write_text(PROBE)
        made = _run([sys.executable, "probe.py"], client_env, home)
        assert made.returncode == 0, f"probe failed:\n{made.stdout[-3000:]}\n{made.stderr[-3000:]}"
        yield client_env, home
    finally:
        _stop(server)
        log.close()


@pytest.mark.timeout(240)
def test_deployment_and_flow_run_ls(prefect_api):
    env, cwd = prefect_api

    deployments = _run([str(BIN / "prefect"), "deployment", "ls"], env, cwd)
    assert deployments.returncode == 0, deployments.stdout[-3000:] + deployments.stderr[-3000:]
    assert f"{FLOW}/{DEPLOYMENT}" in deployments.stdout, deployments.stdout

    runs = _run([str(BIN / "prefect"), "flow-run", "ls"], env, cwd)
    assert runs.returncode == 0, runs.stdout[-3000:] + runs.stderr[-3000:]
    assert FLOW in runs.stdout, runs.stdout
    assert FLOW_RUN in runs.stdout, runs.stdout
    assert "COMPLETED" in runs.stdout, runs.stdout
