"""Stale-run reconciliation: a run is KILLED only when its process is really gone."""

from __future__ import annotations

import http.server
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from greenpipe import liveness
from greenpipe.errors import GreenpipeError
from greenpipe.tracking import runs


class FakeClient:
    def __init__(self, tagged: dict[str, dict[str, str]]) -> None:
        self.tagged, self.terminated = tagged, {}

    def search_runs(self, experiment_ids, filter_string, max_results):
        return [
            SimpleNamespace(info=SimpleNamespace(run_id=rid), data=SimpleNamespace(tags=tags))
            for rid, tags in self.tagged.items()
        ]

    def set_terminated(self, run_id, status):
        self.terminated[run_id] = status


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_process_tags_name_this_process_and_its_machine():
    import psutil

    tags = runs.process_tags()
    assert tags["greenpipe.pid"] == str(os.getpid())
    assert float(tags["greenpipe.pid_started"]) == pytest.approx(
        psutil.Process().create_time(), abs=0.01
    )
    assert tags["greenpipe.machine"] == liveness.machine_id()
    if Path("/proc/sys/kernel/random/boot_id").exists():
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        assert tags["greenpipe.machine"].startswith(boot + "/pidns:")


def test_only_runs_of_gone_processes_on_this_machine_are_killed():
    me = runs.process_tags()
    here, dead = {**me}, str(_dead_pid())
    other = {**me, "greenpipe.machine": me["greenpipe.machine"] + "0"}  # another container
    client = FakeClient(
        {
            "alive": me,
            "dead": {**here, "greenpipe.pid": dead},
            # this process's pid, but started at another time: the pid was reused
            "reused": {**me, "greenpipe.pid_started": "1.00"},
            # same hostname, another pid namespace: its pids say nothing about this one's
            "other-container-dead": {**other, "greenpipe.pid": dead},
            "other-container-reused": {**other, "greenpipe.pid_started": "1.00"},
            "recorded-before-machine": {
                "greenpipe.host": me["greenpipe.host"],
                "greenpipe.pid": dead,
            },
            "untagged": {},
        }
    )
    killed = runs.reconcile_stale_runs(client, "0")
    assert sorted(killed) == ["dead", "reused"]
    assert client.terminated == {"dead": "KILLED", "reused": "KILLED"}


@pytest.mark.skipif(
    not shutil.which("unshare") or os.geteuid() != 0, reason="needs unshare and root"
)
def test_a_live_run_of_a_container_sharing_host_and_hostname_is_not_killed():
    """A process in a pid namespace of its own (as in a container on this host, same hostname
    and boot id) records its run; its pid, seen from here, is another process (pid 1 in the
    namespace is init out here) or none. The run must stay RUNNING while it lives and be
    killed only by a reconciler in its own namespace once it is gone."""
    code = (
        "import json, sys, time\n"
        "from greenpipe.tracking import runs\n"
        "print(json.dumps(runs.process_tags()), flush=True)\n"
        "sys.stdin.readline()\n"
    )
    proc = subprocess.Popen(
        ["unshare", "--pid", "--fork", "--mount-proc", sys.executable, "-c", code],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        tags = json.loads(proc.stdout.readline())
        assert tags["greenpipe.host"] == socket.gethostname()
        assert tags["greenpipe.machine"] != liveness.machine_id()  # same boot, other namespace
        client = FakeClient({"container-run": tags})
        assert runs.reconcile_stale_runs(client, "0") == [] and client.terminated == {}
    finally:
        proc.communicate("done\n", timeout=30)
    assert proc.returncode == 0


def test_an_https_server_without_a_port_is_probed_on_443():
    from urllib.parse import urlparse

    assert runs.server_address(urlparse("https://mlflow.example.org")) == (
        "mlflow.example.org",
        443,
    )
    assert runs.server_address(urlparse("https://mlflow.example.org/x")) == (
        "mlflow.example.org",
        443,
    )
    assert runs.server_address(urlparse("http://mlflow.example.org")) == ("mlflow.example.org", 80)
    assert runs.server_address(urlparse("https://h:8443")) == ("h", 8443)


def test_check_reachable_probes_the_schemes_port(monkeypatch):
    probed = []

    class Refused(OSError):
        pass

    def connect(address, timeout):
        probed.append(address)
        raise Refused

    monkeypatch.setattr(runs.socket, "create_connection", connect)
    with pytest.raises(GreenpipeError, match=r"https://mlflow\.example\.org is unreachable"):
        runs.check_reachable("https://mlflow.example.org")
    assert probed == [("mlflow.example.org", 443)]


def test_check_reachable_finds_a_listening_server():
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen()
        port = srv.getsockname()[1]
        runs.check_reachable(f"http://127.0.0.1:{port}")
    with pytest.raises(GreenpipeError, match="unreachable; start it"):
        runs.check_reachable(f"http://127.0.0.1:{port}")


def test_experiments_open_in_the_model_training_view(tmp_path, monkeypatch):
    """MLflow 3 shows an experiment without mlflow.experimentKind in its GenAI view: a new
    experiment gets the tag, and one made before greenpipe set it gets it when reopened."""
    monkeypatch.chdir(tmp_path)
    tracking = SimpleNamespace(mlflow_uri="sqlite:///mlflow.db", artifact_dir="mlartifacts")
    store = runs.open_store(tracking, "fresh", tmp_path)
    exp = store.client.get_experiment(store.exp_id)
    assert exp.tags["mlflow.experimentKind"] == "custom_model_development"
    old_id = store.client.create_experiment("older", artifact_location=tmp_path.as_uri())
    assert "mlflow.experimentKind" not in store.client.get_experiment(old_id).tags
    assert runs.open_store(tracking, "older", tmp_path).exp_id == old_id
    tags = store.client.get_experiment(old_id).tags
    assert tags["mlflow.experimentKind"] == "custom_model_development"


def test_run_url_points_at_the_tracking_server_or_the_local_ui():
    remote = runs.Store(client=None, exp_id="3", uri="https://mlflow.example.org/")
    view = "?workflowType=machine_learning"
    assert runs.run_url(remote, "abc") == (
        f"https://mlflow.example.org/#/experiments/3/runs/abc{view}"
    )
    local = runs.Store(client=None, exp_id="1", uri="sqlite:////repo/mlflow.db")
    assert runs.run_url(local, "abc") == f"http://127.0.0.1:5000/#/experiments/1/runs/abc{view}"
    assert runs.experiment_url(local.uri, "1") == f"http://127.0.0.1:5000/#/experiments/1{view}"


def test_importing_the_module_leaves_the_environment_alone():
    """MLflow's settings are made where the store is opened, not as a side effect of import."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    code = (
        "import os; before = dict(os.environ); import greenpipe.tracking.runs; "
        "print(sorted(set(os.environ.items()) ^ set(before.items())))"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def _unset(monkeypatch, *names: str) -> None:
    for name in names:  # setenv first: the teardown then removes what client_for sets
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)


class _Unavailable(http.server.BaseHTTPRequestHandler):
    """A tracking server that answers every request 503 (MLflow's client retries those)."""

    def do_GET(self):
        self.send_response(503)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_opening_a_store_sets_the_fail_fast_defaults_unless_set(monkeypatch):
    _unset(monkeypatch, *runs.MLFLOW_DEFAULTS)
    server = http.server.HTTPServer(("127.0.0.1", 0), _Unavailable)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    uri = f"http://127.0.0.1:{server.server_port}"
    try:
        client = runs.client_for(uri)
        assert {k: os.environ.get(k) for k in runs.MLFLOW_DEFAULTS} == {
            "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
            "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
            "MLFLOW_DISABLE_TELEMETRY": "true",
        }
        monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
        runs.client_for(uri)
        assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "30"  # the user's value wins
        began = time.monotonic()
        with pytest.raises(Exception, match="503"):  # MLflow's default: minutes of retries
            client.get_experiment_by_name("greenpipe")
        assert time.monotonic() - began < 5
    finally:
        server.shutdown()
