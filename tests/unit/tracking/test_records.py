"""Stage run records: a stage writes its run as a file and never imports MLflow; a process
that has MLflow open logs the record as the stage's child run, once, whatever ended it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from greenpipe import liveness
from greenpipe.tracking import recorder, records

PARAMS = {"experiment": "records-test", "tracking": {"idle_seconds": 1, "measure_power_secs": 1}}

# a stage under stage_run in a process of its own: its record while it runs, its outcome,
# and whether it imported MLflow or DVC (the point of records)
STAGE = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from greenpipe.config import Params
    from greenpipe.tracking import records
    from greenpipe.tracking.stage import stage_run

    root, fail = Path(sys.argv[1]), sys.argv[2] == "fail"
    params = Params.model_validate(json.loads(sys.argv[3]))
    (root / "plot.png").write_bytes(b"png bytes")
    seen = {}
    try:
        with stage_run("alpha", params, root / "metrics/alpha.json", root=root) as run:
            seen["running"] = [r["status"] for _, r in records.pending(records.folder(root))]
            run.log_metrics({"accuracy": 0.75, "nested": {"count": 3}})
            run.log_artifact(root / "plot.png")
            if fail:
                raise ValueError("data.path 'x.npz' is empty; fix data.path")
    except ValueError:
        pass
    seen["imported"] = sorted(m for m in ("mlflow", "dvc") if m in sys.modules)
    print(json.dumps(seen))
    """
)


def _stage(root: Path, fail: bool = False, logged_by_me: bool = True) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "GREENPIPE_"))}
    env.pop("DVC_ROOT", None)
    env["GREENPIPE_CACHE_DIR"] = str(root / "cache")
    if logged_by_me:  # as under the flow: this test logs the records (no detached logger)
        env[records.LOGGED_BY_ENV] = str(os.getpid())
    proc = subprocess.run(
        [sys.executable, "-c", STAGE, str(root), "fail" if fail else "ok", json.dumps(PARAMS)],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _client(root: Path):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{root / 'mlflow.db'}")
    exp = client.get_experiment_by_name("records-test")
    return client, client.search_runs([exp.experiment_id], max_results=100)


def test_a_stage_writes_its_record_and_the_logger_logs_it_once(tmp_path):
    seen = _stage(tmp_path)
    assert seen == {"running": ["RUNNING"], "imported": []}  # neither MLflow nor DVC
    folder = records.folder(tmp_path, {})
    [(path, rec)] = records.pending(folder)
    assert rec["status"] == "FINISHED" and rec["error"] is None
    assert rec["metrics"]["accuracy"] == 0.75 and rec["files"] == ["000-plot.png"]
    saved = json.loads((tmp_path / "metrics/alpha.json").read_text())
    assert saved["energy"]["record"] == {"record_id": rec["record_id"], "parent_run_id": None}
    assert saved["energy"] == rec["energy"]

    [run_id] = recorder.flush(folder)
    assert records.pending(folder) == [] and not path.with_suffix(".files").exists()
    client, found = _client(tmp_path)
    child = client.get_run(run_id)
    assert child.info.status == "FINISHED" and child.info.run_name == "alpha"
    assert child.data.tags["greenpipe.record_id"] == rec["record_id"]
    assert child.data.metrics["energy_j"] == pytest.approx(saved["energy"]["energy_j"], rel=1e-9)
    assert child.data.metrics["alpha/nested/count"] == 3
    assert child.data.tags["energy.source.ram"] == saved["energy"]["source"]["ram"]
    assert child.info.start_time == int(rec["started_at_unix_s"] * 1000)
    assert child.info.end_time == int(rec["ended_at_unix_s"] * 1000)
    assert [a.path for a in client.list_artifacts(run_id)] == ["000-plot.png"]
    parent = client.get_run(child.data.tags["mlflow.parentRunId"])
    assert parent.info.status == "FINISHED" and parent.data.metrics["alpha/accuracy"] == 0.75
    assert parent.data.metrics["spent/energy_j"] == pytest.approx(saved["energy"]["energy_j"])

    # a logger killed after logging, before deleting: the record is not logged twice
    records.write(folder, rec)
    assert recorder.flush(folder) == [run_id]
    assert len(_client(tmp_path)[1]) == 2  # the parent and its one child
    # a logger killed while logging (its run left RUNNING): that run goes, the record is
    # logged whole
    client.update_run(run_id, status="RUNNING")
    records.write(folder, rec)
    [again] = recorder.flush(folder)
    assert again != run_id and client.get_run(again).info.status == "FINISHED"
    assert client.get_run(run_id).info.lifecycle_stage == "deleted"
    assert client.get_run(again).data.metrics == child.data.metrics


def test_a_failed_stage_is_a_failed_run_with_its_error_and_energy(tmp_path):
    _stage(tmp_path, fail=True)
    assert not (tmp_path / "metrics/alpha.json").exists()  # no record for DVC of a failure
    folder = records.folder(tmp_path, {})
    [(_, rec)] = records.pending(folder)
    assert rec["status"] == "FAILED" and rec["energy"]["energy_j"] > 0
    [run_id] = recorder.flush(folder)
    client, _ = _client(tmp_path)
    child = client.get_run(run_id)
    assert child.info.status == "FAILED"
    assert "data.path 'x.npz' is empty" in child.data.tags["greenpipe.error"]
    assert child.data.metrics["energy_j"] == pytest.approx(rec["energy"]["energy_j"])
    assert client.get_run(child.data.tags["mlflow.parentRunId"]).info.status == "FAILED"


def _dead_record(tmp_path: Path) -> dict:
    """A record left RUNNING by a process that has since exited."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    started = liveness.started_at(dead.pid)
    dead.wait()
    return records.started(
        records.new_id(),
        "train@torch",
        root=str(tmp_path),
        experiment="records-test",
        tracking={
            "uri": f"sqlite:///{tmp_path / 'mlflow.db'}",
            "artifact_root": str(tmp_path / "mlartifacts"),
            "codecarbon_mode": "machine",
        },
        process=_process(dead.pid, started),
        parent={"run_id": None, "invocation": None, "dvc_exp_name": None},
        params={},
        parent_params={},
        backends=["torch"],
    )


def test_a_record_left_running_by_a_dead_process_is_logged_killed(tmp_path):
    folder = records.folder(tmp_path, {})
    rec = _dead_record(tmp_path)
    records.write(folder, rec)
    live = dict(rec, record_id=records.new_id(), process=_process(os.getpid(), None))
    records.write(folder, live)
    assert records.ready(rec) and not records.ready(live)
    [run_id] = recorder.flush(folder)  # the live stage's record waits; the dead one is logged
    child = _client(tmp_path)[0].get_run(run_id)
    assert child.info.status == "KILLED" and "killed" in child.data.tags["greenpipe.error"]
    assert [r["record_id"] for _, r in records.pending(folder)] == [live["record_id"]]


def test_a_record_read_running_that_its_stage_then_finished_is_logged_finished(
    tmp_path, monkeypatch
):
    """The logger read the record RUNNING; the stage then wrote FINISHED and exited before
    the logger saw its process gone: what is logged is what the stage wrote last."""
    folder = records.folder(tmp_path, {})
    running = _dead_record(tmp_path)
    finished = dict(running, status="FINISHED", error=None, ended_at_unix_s=time.time())
    finished.update(energy={}, metrics={"x": 1.0}, files=[])
    path = records.write(folder, finished)
    real = records.pending
    stale = lambda f: [(path, running)] if path.exists() else real(f)  # noqa: E731
    monkeypatch.setattr(records, "pending", stale)
    [run_id] = recorder.flush(folder)
    run = _client(tmp_path)[0].get_run(run_id)
    assert run.info.status == "FINISHED" and "greenpipe.error" not in run.data.tags


def test_the_flow_s_pump_logs_records_while_the_stages_go_on(tmp_path):
    """greenpipe run logs its stages' records from a thread as they become ready (before the
    flow ends), and closing the pump leaves nothing unlogged."""
    folder = records.folder(tmp_path, {})
    with recorder.Pump(folder, interval_s=0.1) as pump:
        records.write(folder, _dead_record(tmp_path))
        deadline = time.time() + 60
        while records.pending(folder) and time.time() < deadline:
            time.sleep(0.1)
        assert records.pending(folder) == [] and pump.failed == {}
        records.write(folder, _dead_record(tmp_path))
    assert records.pending(folder) == []  # the last one: logged by close()
    statuses = [r.info.status for r in _client(tmp_path)[1] if "mlflow.parentRunId" in r.data.tags]
    assert statuses == ["KILLED", "KILLED"]


def _process(pid: int, started: float | None) -> dict:
    """A record's `process` tags (as runs.process_tags writes them) for pid."""
    started = liveness.started_at(pid) if started is None else started
    return {
        "greenpipe.machine": liveness.machine_id(),
        "greenpipe.pid": str(pid),
        "greenpipe.pid_started": f"{started:.2f}",
    }


def test_under_plain_dvc_repro_a_detached_logger_logs_and_then_ends(tmp_path):
    """No driver logs the records: the stage starts the detached logger, which logs the
    record and ends on its own a few seconds after the last one."""
    _stage(tmp_path, logged_by_me=False)
    folder = records.folder(tmp_path, {})
    deadline = time.time() + 120
    while (records.pending(folder) or records.logger_running(folder)) and time.time() < deadline:
        time.sleep(0.5)
    assert records.pending(folder) == [], (folder / records.LOG).read_text()
    assert not records.logger_running(folder)  # nothing left running
    _, found = _client(tmp_path)
    assert sorted(r.info.run_name for r in found if "mlflow.parentRunId" in r.data.tags) == [
        "alpha"
    ]
