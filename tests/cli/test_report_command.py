"""`greenpipe report` on a real MLflow store: the points of its finished parent runs, the
front printed, the report written inside the repo and the runs tagged; a one-line error when
there is nothing to report (what the report holds: tests/unit/report/test_report_crossrun.py)."""

from __future__ import annotations

import base64
import csv
import re
import shutil
from pathlib import Path

import pytest

from greenpipe.cli import main

ROOT = Path(__file__).resolve().parents[2]


def _metrics(backend: str, acc_scratch: float) -> dict[str, float]:
    """A parent run's metrics, as stage_run logs them: a teacher and a scratch student."""
    ev = f"evaluate/{backend}/models"
    return {
        f"train/{backend}/energy/energy_j": 4e-5,
        f"distill/{backend}/student_scratch/energy_j": 2e-5,
        f"{ev}/teacher/accuracy": 0.99,
        f"{ev}/student_scratch/accuracy": acc_scratch,
    }


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> tuple[Path, str]:
    """A repo folder with params.yaml and an MLflow store with two finished parent runs, the
    second one of sweep s2."""
    from mlflow.tracking import MlflowClient

    root = tmp_path_factory.mktemp("store")
    shutil.copy(ROOT / "params.yaml", root / "params.yaml")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(uri)
    exp = client.create_experiment("greenpipe-digits", artifact_location=(root / "a").as_uri())
    for seed, metrics in ((1, _metrics("torch", 0.96)), (2, _metrics("tensorflow", 0.95))):
        tags = {"greenpipe.role": "x", **({"greenpipe.sweep": "s2"} if seed == 2 else {})}
        run = client.create_run(exp, run_name=f"seed {seed}", tags=tags)
        client.log_param(run.info.run_id, "seed", str(seed))
        for k, v in metrics.items():
            client.log_metric(run.info.run_id, k, v)
        client.set_terminated(run.info.run_id, "FINISHED")
    return root, uri


def test_greenpipe_report_command(store, monkeypatch, capsys):
    from mlflow.tracking import MlflowClient

    root, uri = store
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    with pytest.raises(SystemExit) as done:
        main(["--root", str(root), "report", "--energy", "train", "--out", "out"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    # the cheapest to obtain (2e-5 J) and the most accurate (0.99): the teacher of each run
    front = {line.split()[1] for line in out.splitlines() if line.startswith("pareto:")}
    assert front == {"student_scratch@torch", "teacher@torch", "teacher@tensorflow"}
    assert "pareto: student_scratch@torch seed 1 run 'seed 1'" in out
    # energies in SI units, as the report prints them (was "2.000e-05 J")
    assert all("e-0" not in ln and "e+0" not in ln for ln in out.splitlines())
    assert re.search(r"train energy \d[\d.]* [nµm]?J$", out.splitlines()[0])
    page = (root / "out" / "index.html").read_text()
    png = (root / "out" / "pareto.png").read_bytes()
    assert base64.b64encode(png).decode() in page  # the page embeds the picture written
    with (root / "out" / "points.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4 and sum(r["pareto"] == "True" for r in rows) == 3
    tags = [r.data.tags.get("greenpipe.pareto") for r in MlflowClient(uri).search_runs(["1"])]
    assert sorted(tags) == ["true", "true"]


def test_greenpipe_report_without_runs_is_a_one_line_error(store, monkeypatch, capsys):
    root, uri = store
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    with pytest.raises(SystemExit) as done:
        main(["--root", str(root), "report", "--experiment", "nothing-here", "--no-tag"])
    assert done.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no finished run with evaluated models" in err[0]


def test_greenpipe_report_of_a_sweep_takes_only_its_runs(store, monkeypatch, capsys):
    root, uri = store
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    with pytest.raises(SystemExit) as done:
        main(["--root", str(root), "report", "--sweep", "s2", "--out", "s2", "--no-tag"])
    assert done.value.code == 0
    with (root / "s2" / "points.csv").open() as f:
        assert {r["run_name"] for r in csv.DictReader(f)} == {"seed 2"}
    assert "greenpipe report: 2 points" in capsys.readouterr().err
