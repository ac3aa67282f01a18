"""train.nproc = 2 through the real train stage: the launcher holds the stage's MLflow run and
energy span, so CodeCarbon's process mode counts torchrun and both ranks, not rank 0 alone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from greenpipe.config import CompressConfig
from greenpipe.data.compress import encode

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


def _dataset(path: Path) -> None:
    rng = np.random.default_rng(0)
    splits = {}
    for name, n in (("train", 120), ("val", 40), ("test", 40)):
        y = rng.integers(0, 3, n)
        x = rng.random((n, 8, 8, 1), dtype=np.float32) * 0.3
        for c in range(3):
            x[y == c, (c // 2) * 4 : (c // 2) * 4 + 4, (c % 2) * 4 : (c % 2) * 4 + 4, 0] += 0.7
        splits[name] = (x, y)
    path.write_bytes(encode(splits, CompressConfig(dtype="float32", codec="none")))


@pytest.mark.timeout(600)
def test_ddp_stage_is_measured_from_the_launcher_over_every_rank(tmp_path):
    params = {
        "experiment": "ddp",
        "tracking": {"codecarbon_mode": "process", "idle_seconds": 1.0},
        "train": {
            "backends": ["torch"],
            "epochs": 2,
            "batch_size": 30,
            "nproc": 2,
            "model": {"cnn": {"channels": [4, 8], "hidden": 16}},
        },
    }
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    _dataset(tmp_path / "dataset.npz")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "GREENPIPE_"))}
    env["GREENPIPE_CACHE_DIR"] = str(tmp_path / "cache")
    args = ["--backend", "torch", "--data", "dataset.npz", "--model", "teacher.model"]
    args += ["--plots", "train.csv", "--metrics", "train.json"]
    proc = subprocess.run(
        [sys.executable, str(ROOT / "pipelines" / "train.py"), *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    m = json.loads((tmp_path / "train.json").read_text())
    assert m["processes"] == 2 and (tmp_path / "teacher.model").is_file()
    e = m["energy"]
    assert e["tracking_mode"] == "process" and e["source"]["cpu"].endswith("/process")
    # the teacher's window is the whole torchrun (both ranks), inside the launcher's span
    assert 0 < m["teacher"]["duration_s"] <= e["duration_s"]
    assert m["teacher"] == e["tasks"]["teacher"]  # the window, as the span recorded it
    for w in (e, m["teacher"], e["outside_tasks"]):  # parts add up, none negative
        parts = [w["cpu_j"], w["gpu_j"], w["ram_j"]]
        assert min(parts) >= 0 and w["energy_j"] == pytest.approx(sum(parts), rel=1e-9)
    for key in ("energy_j", "cpu_j", "ram_j", "duration_s"):  # the window and the rest: the span
        got = m["teacher"][key] + e["outside_tasks"][key]
        assert got == pytest.approx(e[key], rel=1e-6), key
    assert m["teacher"]["cpu_j"] > 0  # process mode: CPU time of the launcher's tree

    from mlflow.tracking import MlflowClient

    from greenpipe.tracking import recorder, records

    recorder.flush(records.folder(tmp_path, {}))  # the detached logger's runs, all of them
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    exp = client.get_experiment_by_name("ddp")
    found = client.search_runs([exp.experiment_id])
    stages = [r for r in found if r.data.tags.get("greenpipe.stage") == "train@torch"]
    assert len(stages) == 1  # one run, the launcher's: no rank opened its own
    assert stages[0].info.status == "FINISHED"
    assert stages[0].data.metrics["energy_j"] == pytest.approx(e["energy_j"])
