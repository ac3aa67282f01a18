"""Faults: a stage killed with SIGKILL mid-training leaves nothing that looks finished, the
next run completes, and the MLflow runs the kill left RUNNING are marked KILLED."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest

pytestmark = pytest.mark.e2e


def _stage_process(dvc: subprocess.Popen, script: str, timeout: float = 180):
    """The python process running pipelines/<script> under the dvc process, once it exists."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        for child in psutil.Process(dvc.pid).children(recursive=True):
            try:
                if any(script in part for part in child.cmdline()):
                    return child
            except psutil.Error:
                continue
        assert dvc.poll() is None, "dvc ended before the stage started"
        time.sleep(0.2)
    raise AssertionError(f"{script} never started")


def _wait_for_run(ws, name: str, timeout: float = 180):
    deadline = time.time() + timeout
    while time.time() < deadline:
        runs = [r for r in ws.runs() if r.info.run_name == name and r.info.status == "RUNNING"]
        if runs:
            return runs[0]
        time.sleep(0.5)
    raise AssertionError(f"no RUNNING MLflow run {name}")


def _kill_mid_stage(ws, stage: str, script: str):
    dvc = subprocess.Popen(
        ["dvc", "repro", "--single-item", stage],
        cwd=ws.path,
        env=ws.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        proc = _stage_process(dvc, script)
        run = _wait_for_run(ws, stage)
        time.sleep(3)  # well into training
        proc.send_signal(signal.SIGKILL)
        assert dvc.wait(timeout=120) != 0
    finally:
        if dvc.poll() is None:
            dvc.kill()
    return run


def _finished_models(ws) -> list[Path]:
    return [p for p in (ws.path / "models").rglob("*") if p.is_file() and p.suffix == ".model"]


def test_sigkill_mid_train_and_distill_then_rerun_completes(own_workspace):
    raw = own_workspace.params()
    raw["train"]["backends"] = ["torch"]
    small = {k: raw["train"][k] for k in ("epochs", "patience")}
    raw["train"].update(epochs=500, patience=500)
    own_workspace.write_params(raw)
    own_workspace.run("dvc", "repro", "compress")

    killed_train = _kill_mid_stage(own_workspace, "train@torch", "pipelines/train.py")
    assert _finished_models(own_workspace) == []  # only temporary names, never the real output

    raw["train"].update(small)
    raw["distill"].update(epochs=500, patience=500)
    own_workspace.write_params(raw)
    own_workspace.run("dvc", "repro", "train@torch")
    killed_distill = _kill_mid_stage(own_workspace, "distill@torch", "pipelines/distill.py")
    assert [p.name for p in _finished_models(own_workspace)] == ["teacher.model"]

    raw["distill"].update(small)
    own_workspace.write_params(raw)
    own_workspace.run("dvc", "repro")
    names = {p.name for p in _finished_models(own_workspace)}
    assert {"teacher.model", "student_kd.model", "student_scratch.model"} <= names
    assert not list((own_workspace.path / "models").rglob("*.tmp*"))
    from greenpipe.backends import get_backend

    for p in _finished_models(own_workspace):
        get_backend("torch").load(p)  # every model file is complete

    status = {r.info.run_id: r.info.status for r in own_workspace.runs()}
    assert status[killed_train.info.run_id] == "KILLED"
    assert status[killed_distill.info.run_id] == "KILLED"
    assert "RUNNING" not in status.values()


def test_stale_codecarbon_lock_does_not_block(own_workspace):
    import tempfile

    lock = Path(tempfile.gettempdir()) / ".codecarbon.lock"
    existed = lock.exists()
    lock.touch()
    try:
        own_workspace.run("dvc", "repro", "--force", "--single-item", "prepare")
    finally:
        if not existed:
            lock.unlink(missing_ok=True)
