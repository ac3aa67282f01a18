"""The short torch-only pipeline of `make gpu-check` (short_pipeline.py), run as a bare CUDA
machine runs it: in its own process, on whatever device there is (the CPU here), with the
energy meter, and without importing TensorFlow, MLflow, DVC or Prefect."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
MARK = "GREENPIPE_GPU_CHECK "


@pytest.mark.timeout(300)
def test_the_short_pipeline_trains_distils_quantizes_and_measures_energy_alone():
    path = [str(HERE.parents[1] / "src"), os.environ.get("PYTHONPATH", "")]  # + gpu-check's wheels
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in path if p)}
    proc = subprocess.run(
        [sys.executable, str(HERE / "short_pipeline.py"), "3"],
        capture_output=True,
        text=True,
        env=env,
        timeout=280,
    )
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    result = json.loads(proc.stdout.split(MARK)[-1])
    assert result["imported"] == []
    models = result["models"]
    assert list(models) == ["teacher", "student_kd", "student_kd_int8"]
    assert models["student_kd_int8"]["device"] == "cpu"  # ONNX Runtime, whatever the device
    assert models["teacher"]["device"] == result["device"]["device"]
    assert all(m["energy_j"] > 0 and m["duration_s"] > 0 for m in models.values())
    assert result["energy"]["energy_j"] >= sum(m["energy_j"] for m in models.values())
    assert result["sources"]["cpu"].startswith(("measured:", "estimated:"))
    assert "energy sources: cpu=" in proc.stdout  # the table a person reads
