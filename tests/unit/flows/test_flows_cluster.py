"""What a sweep sends to Dask workers, and how the workers' probe reports are judged."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from greenpipe.flows import cluster

ROOT = Path("/repo")
HERE = "boot-a"
SQLITE = "sqlite:////repo/mlflow.db"


def _report(**over) -> dict:
    rep = {
        "host": "node1",
        "machine": HERE,
        "python": "/venv/bin/python",
        "repo": True,
        "marker": True,
        "dvc": True,
        "unreachable": [],
    }
    return {**rep, **over}


SECRETS = {
    "AWS_SECRET_ACCESS_KEY": "s3cr3t",
    "AWS_ACCESS_KEY_ID": "AKIA",
    "MLFLOW_TRACKING_PASSWORD": "pw",
    "MLFLOW_TRACKING_TOKEN": "tok",
    "PREFECT_API_KEY": "pnu_x",
    "CODECARBON_API_KEY": "cc",
    "DVC_STUDIO_TOKEN": "isat_x",
    "GREENPIPE_DB_PASSWORD": "pw",
    "CODECARBON_APIKEY": "cc",
    "DVC_REMOTE_AUTH_STRING": "u:pw",
    "GITHUB_TOKEN": "ghp_x",
    "DATABASE_URL": "postgresql://u:pw@db/x",
}
NEEDED = {
    "MLFLOW_TRACKING_URI": "http://mlflow:5000",
    "DVC_NO_ANALYTICS": "1",
    "CODECARBON_LOG_LEVEL": "error",
    "GREENPIPE_TRACKING": "off",
    "DO_NOT_TRACK": "1",
    "GIT_AUTHOR_NAME": "ada",
}


def test_shipped_env_keeps_what_stages_read_and_no_secret():
    env = cluster.shipped_env({**SECRETS, **NEEDED, "HOME": "/root", "PATH": "/usr/bin"})
    assert env == NEEDED


def test_variant_env_sends_no_secret_of_this_environment(monkeypatch):
    pytest.importorskip("prefect")
    from greenpipe.flows import sweep

    for k, v in SECRETS.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("DVC_NO_ANALYTICS", "1")
    env = sweep.variant_env("run123", "sqlite:////repo/mlflow.db", 2)
    assert not set(SECRETS) & set(env)
    assert not set(SECRETS.values()) & set(env.values())
    assert env["GREENPIPE_PARENT_RUN_ID"] == "run123"
    assert env["MLFLOW_TRACKING_URI"] == "sqlite:////repo/mlflow.db"
    assert env["OMP_NUM_THREADS"] == "2" and env["DVC_NO_ANALYTICS"] == "1"
    assert "PATH" not in env and "HOME" not in env  # the worker's own


def test_workers_on_this_machine_with_a_sqlite_store_pass():
    reports = {"tcp://127.0.0.1:1": _report(), "tcp://127.0.0.1:2": _report()}
    assert cluster.verdict(reports, ROOT, SQLITE, None, HERE) is None


OTHER = "boot-b"  # a worker on another machine
API = "http://p:4200/api"


@pytest.mark.parametrize(
    ("report", "uri", "api", "words"),
    [
        (_report(repo=False), SQLITE, None, ["does not see the repo at /repo", "shared"]),
        (_report(marker=False), SQLITE, None, ["another copy of the repo", "same path"]),
        (_report(dvc=False), SQLITE, None, ["no dvc", "environment greenpipe is installed"]),
        (_report(machine=OTHER), SQLITE, API, ["local file", "MLFLOW_TRACKING_URI"]),
        (_report(machine=OTHER), "/repo/mlruns", API, ["local file"]),
        (_report(machine=OTHER), "http://m:5000", None, ["no Prefect server", "PREFECT_API_URL="]),
        (_report(unreachable=["http://m:5000"]), "http://m:5000", None, ["cannot reach"]),
    ],
)
def test_a_worker_that_cannot_take_part_is_named_with_the_fix(report, uri, api, words):
    line = cluster.verdict({"tcp://10.0.0.7:4000": report}, ROOT, uri, api, HERE)
    assert line and "\n" not in line
    assert "Dask worker tcp://10.0.0.7:4000 (host node1)" in line
    for word in words:
        assert word in line, line


def test_workers_on_other_machines_pass_with_servers_every_worker_reaches():
    reports = {"tcp://10.0.0.7:4000": _report(machine="boot-b")}
    api = "http://10.0.0.5:4200/api"
    assert cluster.verdict(reports, ROOT, "http://10.0.0.5:5000", api, HERE) is None
    assert cluster.verdict(reports, ROOT, "postgresql://db/mlflow", api, HERE) is None


def test_a_worker_without_greenpipe_is_named():
    err = ModuleNotFoundError("No module named 'greenpipe'")
    line = cluster.verdict({"tcp://10.0.0.7:4000": err}, ROOT, SQLITE, None, HERE)
    assert "tcp://10.0.0.7:4000" in line and "No module named 'greenpipe'" in line
    assert "environment greenpipe is installed in" in line


def test_probe_sees_the_marker_only_in_the_same_repo(tmp_path):
    (tmp_path / "dvc.yaml").write_text("stages: {}\n")
    (tmp_path / ".m").write_text("")
    rep = cluster.probe(str(tmp_path), ".m", ["http://127.0.0.1:9"])
    assert rep["repo"] and rep["marker"] and rep["unreachable"] == ["http://127.0.0.1:9"]
    assert rep["machine"] == cluster.same_machine_id()
    assert not cluster.probe(str(tmp_path), ".other", [])["marker"]


def test_importing_greenpipe_and_its_cli_imports_no_prefect():
    code = (
        "import sys, greenpipe, greenpipe.cli, greenpipe.flows, greenpipe.flows.cluster; "
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('prefect', 'flows')); "
        "assert not bad, bad"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_flows_load_from_the_package_without_touching_sys_path():
    pytest.importorskip("prefect")
    from greenpipe import cli

    before = list(sys.path)
    module = cli._load_flows("sweep")
    assert module.__name__ == "greenpipe.flows.sweep"
    assert sys.path == before
