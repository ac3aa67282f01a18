"""The remembered experiment ids: a cached `greenpipe run` prints the MLflow link without
importing MLflow, and never from an entry that no longer holds."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from greenpipe.tracking import known


def _repo(tmp_path: Path) -> tuple[Path, str]:
    (tmp_path / ".dvc").mkdir()
    db = tmp_path / "mlflow.db"
    db.write_bytes(b"x")
    return tmp_path, f"sqlite:///{db}"


def test_an_id_is_recalled_for_the_same_store_and_name_only(tmp_path):
    root, uri = _repo(tmp_path)
    known.remember(root, uri, "greenpipe", "7")
    known.remember(root, "http://127.0.0.1:5000", "greenpipe", "3")
    assert known.recall(root, uri, "greenpipe") == "7"
    assert known.recall(root, "http://127.0.0.1:5000", "greenpipe") == "3"
    assert known.recall(root, uri, "other") is None
    assert known.recall(root, "sqlite:////elsewhere/mlflow.db", "greenpipe") is None


def test_a_recreated_sqlite_store_is_not_mistaken_for_the_old_one(tmp_path):
    root, uri = _repo(tmp_path)
    known.remember(root, uri, "greenpipe", "7")
    db = Path(uri.removeprefix("sqlite:///"))
    keep = tmp_path / "keep"  # hold the old inode so the new file cannot reuse its number
    db.rename(keep)
    db.write_bytes(b"y")
    assert known.recall(root, uri, "greenpipe") is None


def test_nothing_is_written_outside_a_dvc_repo_and_a_bad_file_is_ignored(tmp_path):
    known.remember(tmp_path, "http://h:1", "greenpipe", "1")
    assert not (tmp_path / known.FILE).exists()
    root, uri = _repo(tmp_path)
    (root / known.FILE).parent.mkdir(parents=True)
    (root / known.FILE).write_text("not json")
    assert known.recall(root, uri, "greenpipe") is None
    known.remember(root, uri, "greenpipe", "2")
    assert known.recall(root, uri, "greenpipe") == "2"


LINK = """\
import sys
from pathlib import Path
from greenpipe.cli import mlflow_link
from greenpipe.config import load_params
root = Path(sys.argv[1])
print(mlflow_link(root, load_params(root / "params.yaml")))
print("mlflow" in sys.modules)
"""


def test_the_link_of_a_remembered_experiment_needs_no_mlflow(tmp_path):
    root, uri = _repo(tmp_path)
    (root / "params.yaml").write_text(f"experiment: greenpipe\ntracking:\n  mlflow_uri: {uri}\n")
    known.remember(root, uri, "greenpipe", "12")
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    out = subprocess.run(
        [sys.executable, "-c", LINK, str(root)], capture_output=True, text=True, check=True, env=env
    ).stdout.split()
    assert out == ["http://127.0.0.1:5000/#/experiments/12?workflowType=machine_learning", "False"]
