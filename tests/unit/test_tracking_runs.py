"""Stale-run reconciliation: a run is KILLED only when its process is really gone."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from types import SimpleNamespace

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


def test_process_tags_name_this_process():
    tags = runs.process_tags()
    assert tags["greenpipe.pid"] == str(os.getpid())
    assert float(tags["greenpipe.pid_started"]) > 0


def test_only_runs_of_gone_processes_are_killed():
    me = runs.process_tags()
    host = socket.gethostname()
    client = FakeClient(
        {
            "alive": me,
            "dead": {"greenpipe.host": host, "greenpipe.pid": str(_dead_pid())},
            # this process's pid, but started at another time: the pid was reused
            "reused": {**me, "greenpipe.pid_started": "1.00"},
            "other-host": {"greenpipe.host": host + "-x", "greenpipe.pid": str(_dead_pid())},
            "untagged": {},
        }
    )
    killed = runs.reconcile_stale_runs(client, "0")
    assert sorted(killed) == ["dead", "reused"]
    assert client.terminated == {"dead": "KILLED", "reused": "KILLED"}


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
