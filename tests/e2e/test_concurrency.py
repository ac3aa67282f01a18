"""Four experiments writing to one SQLite MLflow store at once (each process logging its own
stages' run records, as a flow does) lose no run and no metric."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

N_PROC, N_METRICS = 4, 150

WORKER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from greenpipe.config import Params
    from greenpipe.tracking.stage import stage_run

    import os
    from greenpipe.tracking import ledger, recorder, records, runs

    i = int(sys.argv[1])
    params = Params.model_validate({"experiment": "concurrency"})
    client = runs.client_for(os.environ["MLFLOW_TRACKING_URI"])
    exp_id = runs.ensure_experiment(client, "concurrency", Path("mlartifacts"))
    parent = client.create_run(exp_id, run_name=f"experiment {i}").info.run_id
    os.environ[runs.PARENT_ENV] = parent  # as `greenpipe run` does for its stages
    # and, as the flow does, this process logs its stages' records itself (a folder each)
    os.environ[records.LOGGED_BY_ENV] = str(os.getpid())
    os.environ["DVC_ROOT"] = str(Path.cwd() / f"w{i}")
    for stage in ("alpha", "beta"):
        with stage_run(stage, params, f"metrics/{stage}-{i}.json", root=Path.cwd()) as run:
            run.log_metrics({f"m{j}": float(i * 1000 + j) for j in range(N_METRICS)})
            run.log_metrics({"worker": i})
        recorder.flush(records.folder(Path.cwd()), parent=parent)
    # the driver's ledger on its parent, as the flow brings it up to date at its end
    store = runs.Store(client, exp_id, os.environ["MLFLOW_TRACKING_URI"])
    ledger.reconcile(store, parent, {})
    client.set_terminated(parent, "FINISHED")
    """
).replace("N_METRICS", str(N_METRICS))


def test_four_writers_lose_nothing(tmp_path):
    from greenpipe.tracking import runs

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = runs.client_for(uri)  # create the store and experiment once, before the writers
    exp_id = runs.ensure_experiment(client, "concurrency", tmp_path / "mlartifacts")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "GREENPIPE_"))}
    env["MLFLOW_TRACKING_URI"] = uri
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(i)],
            cwd=tmp_path,
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(N_PROC)
    ]
    errors = [p.communicate(timeout=600)[1] for p in procs]
    assert all(p.returncode == 0 for p in procs), errors

    found = client.search_runs([exp_id], max_results=1000)
    parents = [r for r in found if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in found if "mlflow.parentRunId" in r.data.tags]
    assert len(parents) == N_PROC and len(children) == 2 * N_PROC
    for r in children:
        assert r.info.status == "FINISHED"
        stage_metrics = [k for k in r.data.metrics if k.startswith(f"{r.info.run_name}/m")]
        assert len(stage_metrics) == N_METRICS
        # the run holds the energy of the record its own stage wrote, nobody else's
        i = int(r.data.metrics[f"{r.info.run_name}/worker"])
        record = json.loads((tmp_path / f"metrics/{r.info.run_name}-{i}.json").read_text())
        e = record["energy"]
        assert r.data.tags["greenpipe.record_id"] == e["record"]["record_id"]
        assert r.data.tags["mlflow.parentRunId"] == e["record"]["parent_run_id"]
        for key, field in (("energy_j", "energy_j"), ("cpu_energy_j", "cpu_j")):
            assert r.data.metrics[key] == pytest.approx(e[field], rel=1e-9), key
        assert e["energy_j"] == pytest.approx(e["cpu_j"] + e["gpu_j"] + e["ram_j"], rel=1e-9)
        assert record["worker"] == i and record["m0"] == i * 1000
    for p in parents:
        assert len([k for k in p.data.metrics if re.fullmatch(r"(alpha|beta)/m\d+", k)]) == (
            2 * N_METRICS
        )
        mine = [r for r in children if r.data.tags["mlflow.parentRunId"] == p.info.run_id]
        spent = sum(r.data.metrics["energy_j"] for r in mine)
        assert p.data.metrics["spent/energy_j"] == pytest.approx(spent, rel=1e-9)
    assert Path(tmp_path / "metrics").is_dir()
