"""The bad-input catalogue: each case gives one line naming the problem and the fix, a non-zero
exit (2 for usage and configuration, 1 for run-time failures) and no half-written outputs.

Stages run as a user would run them (`python pipelines/<stage>.py ...`) in a scratch folder,
so no case can touch the repo's own outputs.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PARAMS = yaml.safe_load((ROOT / "params.yaml").read_text())
PY = sys.executable


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "GREENPIPE_"))}
    env["PATH"] = str(Path(PY).parent) + os.pathsep + env.get("PATH", "")
    env.update({"MLFLOW_DISABLE_TELEMETRY": "true", "DVC_NO_ANALYTICS": "1"})
    return env


def _params(tmp: Path, patch: dict | None = None, raw: str | None = None) -> Path:
    p = tmp / "params.yaml"
    if raw is not None:
        p.write_text(raw)
        return p
    data = yaml.safe_load(yaml.safe_dump(PARAMS))
    for dotted, value in (patch or {}).items():
        node = data
        *parents, last = dotted.split(".")
        for part in parents:
            node = node[part]
        node[last] = value
    p.write_text(yaml.safe_dump(data))
    return p


def _run(tmp: Path, *args: str, env: dict | None = None, timeout: int = 120):
    return subprocess.run(
        args, cwd=tmp, env=env or _env(), capture_output=True, text=True, timeout=timeout
    )


def _stage(tmp: Path, stage: str, *args: str, **kw):
    return _run(tmp, PY, str(ROOT / "pipelines" / f"{stage}.py"), *args, **kw)


def _one_line(proc) -> str:
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got:\n{proc.stderr}"
    return lines[0]


def _npz(path: Path, x: np.ndarray, y: np.ndarray) -> Path:
    np.savez(path, x=x, y=y)
    return path


PREPARE_OUT = (
    "--out",
    "data/prepared.npz",
    "--classes",
    "data/classes.json",
    "--metrics",
    "metrics/prepare.json",
)

CONFIG_CASES = [
    ("wrong type", {"train.epochs": "ten"}, "train.epochs"),
    ("unknown key", {"train.epochz": 3}, "train.epochz"),
    ("zero epochs", {"train.epochs": 0}, "train.epochs"),
    ("negative epochs", {"distill.epochs": -1}, "distill.epochs"),
    ("lr zero", {"train.lr": 0}, "train.lr"),
    ("lr negative", {"distill.lr": -0.1}, "distill.lr"),
    ("alpha above 1", {"distill.alpha": 1.5}, "distill.alpha"),
    ("alpha below 0", {"distill.alpha": -0.1}, "distill.alpha"),
    ("temperature zero", {"distill.temperature": 0}, "distill.temperature"),
    ("unknown backend", {"train.backends": ["jax"]}, "train.backends"),
    ("backend twice", {"train.backends": ["torch", "torch"]}, "train.backends"),
    ("boolean for a number", {"train.batch_size": True}, "train.batch_size"),
    ("bad country code", {"tracking.country_iso_code": "France"}, "country_iso_code"),
    ("test fraction too large", {"data.test_fraction": 0.9}, "data.test_fraction"),
    ("npz source without a path", {"data.source": "npz"}, "data.path"),
    ("unknown data source", {"data.source": "imagenet"}, "data.source"),
    ("unknown top-level section", {"trian": {"epochs": 3}}, "trian"),
]


@pytest.mark.parametrize("name, patch, needle", CONFIG_CASES, ids=[c[0] for c in CONFIG_CASES])
def test_config_errors_exit_2_before_any_work(tmp_path, name, patch, needle):
    _params(tmp_path, patch)
    proc = _stage(tmp_path, "prepare", *PREPARE_OUT)
    assert proc.returncode == 2, proc.stderr
    line = _one_line(proc)
    assert needle in line and line.startswith("greenpipe config error:")
    assert not (tmp_path / "data").exists() and not (tmp_path / "mlflow.db").exists()


@pytest.mark.parametrize(
    "name, raw, needle",
    [
        ("invalid yaml", "train: [epochs: 3\n", "not valid YAML"),
        ("not a mapping", "- 1\n- 2\n", "mapping"),
    ],
)
def test_unreadable_params_exit_2(tmp_path, name, raw, needle):
    _params(tmp_path, raw=raw)
    proc = _stage(tmp_path, "prepare", *PREPARE_OUT)
    assert proc.returncode == 2 and needle in _one_line(proc)


def test_missing_params_file_exits_2(tmp_path):
    proc = _stage(tmp_path, "prepare", "--params", "nope.yaml", *PREPARE_OUT)
    assert proc.returncode == 2 and "nope.yaml" in _one_line(proc)


def _runtime_case(tmp: Path, stage: str, args: tuple, patch: dict | None, outputs: list[str]):
    _params(tmp, patch)
    proc = _stage(tmp, stage, *args)
    line = _one_line(proc)
    assert proc.returncode == 1, proc.stderr
    for out in outputs:
        assert not (tmp / out).exists(), f"{out} was left behind"
    leftovers = [p for p in tmp.rglob("*.tmp*")]
    assert not leftovers, leftovers
    return line


def test_missing_data_file(tmp_path):
    line = _runtime_case(
        tmp_path,
        "prepare",
        PREPARE_OUT,
        {"data.source": "npz", "data.path": str(tmp_path / "none.npz")},
        ["data/prepared.npz", "metrics/prepare.json"],
    )
    assert "none.npz" in line and "data.path" in line


def test_corrupt_data_file(tmp_path):
    (tmp_path / "bad.npz").write_bytes(b"this is not a zip archive")
    line = _runtime_case(
        tmp_path,
        "prepare",
        PREPARE_OUT,
        {"data.source": "npz", "data.path": str(tmp_path / "bad.npz")},
        ["data/prepared.npz"],
    )
    assert "bad.npz" in line


def test_single_class_data_set(tmp_path):
    x = np.random.default_rng(0).random((30, 8, 8), dtype=np.float32)
    _npz(tmp_path / "one.npz", x, np.zeros(30, dtype=np.int64))
    line = _runtime_case(
        tmp_path,
        "prepare",
        PREPARE_OUT,
        {"data.source": "npz", "data.path": str(tmp_path / "one.npz")},
        ["data/prepared.npz"],
    )
    assert "1 class" in line


def test_npz_without_x_and_y(tmp_path):
    np.savez(tmp_path / "xy.npz", images=np.zeros((4, 8, 8)), labels=np.zeros(4))
    line = _runtime_case(
        tmp_path,
        "prepare",
        PREPARE_OUT,
        {"data.source": "npz", "data.path": str(tmp_path / "xy.npz")},
        ["data/prepared.npz"],
    )
    assert "x and y" in line


def test_mismatched_images_and_labels(tmp_path):
    _npz(tmp_path / "mm.npz", np.zeros((10, 8, 8), np.float32), np.zeros(7, np.int64))
    line = _runtime_case(
        tmp_path,
        "prepare",
        PREPARE_OUT,
        {"data.source": "npz", "data.path": str(tmp_path / "mm.npz")},
        ["data/prepared.npz"],
    )
    assert "mm.npz" in line


def _image_csv(tmp: Path, case: str) -> Path:
    """inputs/pets/labels.csv over 4 PNGs per class, broken as `case` says."""
    from PIL import Image

    root = tmp / "inputs" / "pets"
    (root / "img").mkdir(parents=True)
    rows = []
    for label in ("cat", "dog"):
        for i in range(4):
            Image.new("L", (6 + i, 8), 60 * i).save(root / "img" / f"{label}{i}.png")
            rows.append(f"img/{label}{i}.png,{label}")
    header = "path,label"
    if case == "missing column":
        header = "path,class"
    if case == "missing image":
        rows[5] = "img/gone.png,dog"
    if case == "unreadable image":
        (root / "img" / "dog1.png").write_bytes(b"\x89PNG cut short")
    if case == "single class":
        rows = [r.replace("dog", "cat") for r in rows]
    (root / "labels.csv").write_text("\n".join([header, *rows]) + "\n")
    return root / "labels.csv"


CSV_CASES = [
    ("missing column", "has no column 'label'"),
    ("missing image", "line 7: image 'img/gone.png' does not exist"),
    ("unreadable image", "line 7: 'img/dog1.png' is not a readable image"),
    ("single class", "names 1 class ('cat')"),
]


@pytest.mark.parametrize("case, needle", CSV_CASES, ids=[c[0] for c in CSV_CASES])
def test_bad_image_csv(tmp_path, case, needle):
    csv = _image_csv(tmp_path, case)
    line = _runtime_case(
        tmp_path,
        "prepare",
        PREPARE_OUT,
        {"data.source": "csv", "data.path": "inputs/pets/labels.csv", "data.image_size": 8},
        ["data/prepared.npz", "data/classes.json", "metrics/prepare.json"],
    )
    assert needle in line and str(csv.relative_to(tmp_path)) in line, line


def test_missing_stage_input(tmp_path):
    line = _runtime_case(
        tmp_path,
        "clean",
        (
            "--in",
            "data/prepared.npz",
            "--out",
            "data/clean.npz",
            "--grid",
            "plots/clean_flagged.png",
            "--metrics",
            "metrics/clean.json",
        ),
        None,
        ["data/clean.npz", "metrics/clean.json"],
    )
    assert "data/prepared.npz" in line and "dvc repro" in line


def test_unwritable_output_folder(tmp_path):
    (tmp_path / "blocked").write_text("a file where a folder should be")
    line = _runtime_case(
        tmp_path,
        "prepare",
        (
            "--out",
            "blocked/prepared.npz",
            "--classes",
            "c.json",
            "--metrics",
            "metrics/prepare.json",
        ),
        None,
        ["metrics/prepare.json"],
    )
    assert "blocked" in line


def test_corrupt_model_file(tmp_path):
    from greenpipe.artifacts import save_splits

    rng = np.random.default_rng(0)
    splits = {
        s: (rng.random((12, 8, 8, 1), dtype=np.float32), np.arange(12) % 3)
        for s in ("train", "val", "test")
    }
    save_splits(tmp_path / "data.npz", splits)
    (tmp_path / "teacher.model").write_bytes(b"garbage")
    line = _runtime_case(
        tmp_path,
        "evaluate",
        (
            "--backend",
            "torch",
            "--data",
            "data.npz",
            "--model",
            "teacher=teacher.model",
            "--classes",
            "data/classes.json",
            "--confusion",
            "plots/c.csv",
            "--metrics",
            "metrics/evaluate.json",
        ),
        None,
        ["plots/c.csv", "metrics/evaluate.json"],
    )
    assert "teacher.model" in line and "re-run" in line


def test_backend_not_in_params(tmp_path):
    _params(tmp_path, {"train.backends": ["torch"]})
    proc = _stage(
        tmp_path,
        "train",
        "--backend",
        "tensorflow",
        "--data",
        "data.npz",
        "--model",
        "m.model",
        "--plots",
        "p.csv",
        "--metrics",
        "metrics/train.json",
    )
    assert proc.returncode == 2 and "train.backends" in _one_line(proc)


def test_unreachable_mlflow_server_fails_fast(tmp_path):
    _params(tmp_path)
    env = {**_env(), "MLFLOW_TRACKING_URI": "http://127.0.0.1:9"}
    proc = _stage(tmp_path, "prepare", *PREPARE_OUT, env=env, timeout=60)
    assert proc.returncode == 1
    line = _one_line(proc)
    assert "unreachable" in line and "MLFLOW_TRACKING_URI" in line
    assert not (tmp_path / "data").exists()


def test_run_outside_a_dvc_repo_exits_2(tmp_path):
    _params(tmp_path)
    (tmp_path / "flows").mkdir()
    proc = _run(tmp_path, str(Path(PY).parent / "greenpipe"), "run")
    assert proc.returncode == 2
    assert "dvc init" in _one_line(proc)


def test_unknown_command_exits_2(tmp_path):
    proc = _run(tmp_path, str(Path(PY).parent / "greenpipe"), "frobnicate")
    assert proc.returncode == 2


def test_relative_data_path_leaving_the_repo_exits_2(tmp_path):
    _params(tmp_path, {"data.source": "npz", "data.path": "../elsewhere/data.npz"})
    proc = _stage(tmp_path, "prepare", *PREPARE_OUT)
    assert proc.returncode == 2 and "absolute path" in _one_line(proc)


def test_output_outside_the_repo_is_refused(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    _params(repo)
    out = ("--out", str(tmp_path / "outside.npz"), "--classes", "c.json")
    proc = _stage(repo, "prepare", *out, "--metrics", "metrics/prepare.json")
    assert proc.returncode == 2 and "outside the repo" in _one_line(proc)
    assert not (tmp_path / "outside.npz").exists()


@pytest.mark.parametrize("where", ["../outside", "absolute", "link/inside"])
def test_report_out_outside_the_repo_is_refused_and_nothing_written(tmp_path, where):
    repo = tmp_path / "repo"
    repo.mkdir()
    _params(repo)
    (repo / "link").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    out = str(tmp_path / "abs") if where == "absolute" else where
    proc = _run(repo, str(Path(PY).parent / "greenpipe"), "report", "--out", out)
    assert proc.returncode == 2, proc.stderr
    line = _one_line(proc)
    assert line.startswith(f"greenpipe usage error: --out '{out}' is outside the repo")
    assert "give a folder inside it" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["repo"]  # nothing outside
    assert sorted(p.name for p in repo.iterdir()) == ["link", "params.yaml"]  # no store either
