"""Faults, on an image-folder data set: a stage killed with SIGKILL mid-training leaves nothing
that looks finished, the next run completes, and the run records the kill left RUNNING are
logged as KILLED MLflow runs. The module's workspace reads its data from a folder of PNG and
JPEG files (one subfolder per class, some files corrupt), so the same runs prove that the
whole pipeline works end to end on an image folder."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
from PIL import Image

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("faults")]  # one module workspace


def _stage_process(dvc: subprocess.Popen, script: str, timeout: float = 180):
    """The python process running pipelines/<script> under the dvc process, once it exists.

    Not the shell DVC starts it with: dash (/bin/sh, DVC's shell when SHELL is unset, as on
    CI) forks the command instead of exec'ing it, and killing the shell would leave the
    stage running as an orphan."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        for child in psutil.Process(dvc.pid).children(recursive=True):
            try:
                cmd = child.cmdline()
                if cmd and "python" in Path(cmd[0]).name and script in cmd[1:2]:
                    return child
            except psutil.Error:
                continue
        assert dvc.poll() is None, "dvc ended before the stage started"
        time.sleep(0.2)
    raise AssertionError(f"{script} never started")


def _wait_for_record(ws, name: str, timeout: float = 180) -> str:
    """The id of the stage's RUNNING run record, once the stage has written it."""
    from greenpipe.tracking import records

    deadline = time.time() + timeout
    while time.time() < deadline:
        for _, rec in records.pending(records.folder(ws.path, {})):
            if rec["stage"] == name and rec["status"] == "RUNNING":
                return rec["record_id"]
        time.sleep(0.2)
    raise AssertionError(f"no RUNNING run record of {name}")


def _kill_mid_stage(ws, stage: str, script: str, after_s: float = 3.0) -> str:
    """SIGKILL the stage mid-way; the id of the run record it left RUNNING."""
    dvc = subprocess.Popen(
        ["dvc", "repro", "--single-item", stage],
        cwd=ws.path,
        env=ws.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        proc = _stage_process(dvc, script)
        record_id = _wait_for_record(ws, stage)
        time.sleep(after_s)  # well into the stage's work
        proc.send_signal(signal.SIGKILL)
        assert dvc.wait(timeout=120) != 0
    finally:
        if dvc.poll() is None:
            dvc.kill()
    return record_id


def _status_of_record(ws, record_id: str) -> str:
    """The status of the MLflow run that logged the record (once the logger has)."""
    found = [r for r in ws.runs() if r.data.tags.get("greenpipe.record_id") == record_id]
    assert len(found) == 1, record_id
    return found[0].info.status


IMAGES = "inputs/digits_png"
CORRUPT = 3


def _write_image_folder(root: Path, per_class: int = 30) -> None:
    """scikit-learn's digits as files: 16x16 grayscale PNG, every fifth a 20x20 RGB JPEG;
    plus corrupt files (a truncated PNG, text named .png, an empty .jpg)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    for label in range(10):
        folder = root / f"digit_{label}"
        folder.mkdir(parents=True, exist_ok=True)
        for i, img in enumerate(d.images[d.target == label][:per_class]):
            im = Image.fromarray((img * 255 / 16).astype(np.uint8), mode="L")
            im = im.resize((16, 16), Image.Resampling.BILINEAR)
            if i % 5 == 0:
                im.convert("RGB").resize((20, 20)).save(folder / f"{i:03d}.jpg", quality=95)
            else:
                im.save(folder / f"{i:03d}.png")
    good = (root / "digit_0" / "001.png").read_bytes()
    (root / "digit_1" / "truncated.png").write_bytes(good[: len(good) // 2])
    (root / "digit_2" / "text.png").write_text("not an image")
    (root / "digit_3" / "empty.jpg").write_bytes(b"")


@pytest.fixture(scope="module")
def image_ws(own_workspace):
    ws = own_workspace
    _write_image_folder(ws.path / IMAGES)
    raw = ws.params()
    raw["data"].update(source="image_folder", path=IMAGES, image_size=16, channels=1)
    raw["train"]["backends"] = ["torch"]
    ws.write_params(raw)
    ws.run("git", "add", "-A")
    ws.run("git", "commit", "-qm", "image folder")
    return ws


def _finished_models(ws) -> list[Path]:
    return [p for p in (ws.path / "models").rglob("*") if p.is_file() and p.suffix == ".model"]


def test_sigkill_mid_train_and_distill_then_rerun_completes(image_ws):
    own_workspace = image_ws
    raw = own_workspace.params()
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
    from greenpipe import artifacts
    from greenpipe.backends import get_backend

    for p in _finished_models(own_workspace):
        if artifacts.skipped_reason(p) is None:  # a model not made holds only its reason
            get_backend("torch").load(p)  # every model file is complete

    # the killed stages' records, left RUNNING by a dead process, are logged as KILLED runs
    assert _status_of_record(own_workspace, killed_train) == "KILLED"
    assert _status_of_record(own_workspace, killed_distill) == "KILLED"
    assert "RUNNING" not in {r.info.status for r in own_workspace.runs()}


def test_the_image_folder_went_through_every_stage(image_ws):
    import json

    prep = json.loads((image_ws.path / "metrics/prepare.json").read_text())
    assert prep["classes"] == 10 and prep["skipped_unreadable"] == CORRUPT
    assert prep["image"] == {"height": 16, "width": 16, "channels": 1}
    assert sum(prep["samples"].values()) == 10 * 30
    models = json.loads((image_ws.path / "metrics/models/torch/evaluate.json").read_text())
    assert set(models["models"]) >= {"teacher", "student_kd", "student_kd_int8"}
    assert models["models"]["teacher"]["accuracy"] > 0.5
    assert "| teacher | torch |" in (image_ws.path / "reports/report.md").read_text()
    status = image_ws.run("dvc", "status", "--quiet", check=False)
    assert status.returncode == 0, status.stdout  # every stage up to date in dvc.lock


def _lock_entry(ws, stage: str) -> dict:
    import yaml

    return yaml.safe_load((ws.path / "dvc.lock").read_text())["stages"][stage]


def test_sigkill_mid_compress_then_rerun_completes(image_ws):
    """compress made slow on purpose (64x augmentation, float32, zstd-19: seconds of encoding)
    and killed while it encodes: no data set appears, dvc.lock keeps the last good entry,
    and the re-run writes a complete, readable data set."""
    from greenpipe.artifacts import load_dataset

    ws = image_ws
    raw = ws.params()
    saved = {k: dict(raw[k]) for k in ("augment", "compress")}
    raw["augment"]["factor"] = 64
    raw["compress"].update(dtype="float32", codec="zstd", level=19)
    ws.write_params(raw)
    ws.run("dvc", "repro", "augment")
    good = _lock_entry(ws, "compress")
    killed = _kill_mid_stage(ws, "compress", "pipelines/compress.py", after_s=0.5)
    data = ws.path / "data"
    # DVC removed the old data set before the stage ran; no half-written file took its place
    assert not (data / "dataset.npz").exists()
    assert _lock_entry(ws, "compress") == good

    ws.run("dvc", "repro", "compress")
    splits = load_dataset(data / "dataset.npz")
    augmented = np.load(data / "augmented.npz")
    assert len(splits["train"][1]) == len(augmented["y_train"])
    assert splits["train"][0].dtype == np.float32
    assert not list(data.glob(".*.tmp*"))
    assert _status_of_record(ws, killed) == "KILLED"
    raw.update(saved)
    ws.write_params(raw)


def test_stale_codecarbon_lock_does_not_block(own_workspace):
    """CodeCarbon's lock file, as a SIGKILLed run in its lock mode leaves it behind: the stage
    still runs and is measured over its whole span (greenpipe runs CodeCarbon with
    allow_multiple_runs, which takes no lock), and the lock is left as it was."""
    import json
    import tempfile

    ws = own_workspace
    lock = Path(tempfile.gettempdir()) / ".codecarbon.lock"
    existed = lock.exists()
    lock.touch()
    stamp = lock.stat().st_mtime_ns
    known = {r.info.run_id for r in ws.runs()}
    try:
        ws.run("dvc", "repro", "--force", "--single-item", "prepare")
        assert lock.exists() and lock.stat().st_mtime_ns == stamp
    finally:
        if not existed:
            lock.unlink(missing_ok=True)
    e = json.loads((ws.path / "metrics/prepare.json").read_text())["energy"]
    # measured, and over the whole span: RAM's constant modelled power x the span's duration
    assert e["ram_j"] / e["idle"]["ram_power_w"] == pytest.approx(
        e["duration_s"], rel=0.02, abs=0.01
    )
    assert e["energy_j"] == pytest.approx(e["cpu_j"] + e["gpu_j"] + e["ram_j"], rel=1e-9)
    run = next(r for r in ws.runs() if r.info.run_id not in known and r.info.run_name == "prepare")
    assert run.info.status == "FINISHED"
    assert run.data.metrics["energy_j"] == pytest.approx(e["energy_j"], rel=1e-9)
