"""The compressed data set survives `dvc push` -> fresh `git clone` -> `dvc pull` byte for byte
(real git and DVC CLIs, a local remote in a temporary folder)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from greenpipe.config import CompressConfig
from greenpipe.data.compress import encode, load_container

DVC = Path(sys.executable).with_name("dvc")
pytestmark = pytest.mark.skipif(not DVC.exists() or not shutil.which("git"), reason="needs dvc+git")
ENV = {
    **os.environ,
    "DVC_NO_ANALYTICS": "1",
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@t",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@t",
}


def _run(cwd: Path, *args: str) -> None:
    subprocess.run(list(args), cwd=cwd, env=ENV, check=True, capture_output=True, text=True)


@pytest.mark.parametrize("codec", ["zlib", "zstd", "blosc2"])
def test_push_clone_pull_restores_the_data_set_byte_for_byte(tmp_path, codec):
    rng = np.random.default_rng(0)
    splits = {
        s: (rng.random((20, 8, 8, 1), dtype=np.float32), rng.integers(0, 3, 20))
        for s in ("train", "val", "test")
    }
    level = 3 if codec == "zstd" else 6
    blob = encode(splits, CompressConfig(codec=codec, level=level))
    repo, clone, remote = tmp_path / "repo", tmp_path / "clone", tmp_path / "remote"
    (repo / "data").mkdir(parents=True)
    (repo / "data" / "dataset.npz").write_bytes(blob)
    _run(repo, "git", "init", "-q")
    _run(repo, str(DVC), "init", "-q")
    _run(repo, str(DVC), "config", "core.check_update", "false")
    _run(repo, str(DVC), "remote", "add", "-d", "local", str(remote))
    _run(repo, str(DVC), "add", "data/dataset.npz")
    _run(repo, "git", "add", "-A")
    _run(repo, "git", "commit", "-q", "-m", "data")
    _run(repo, str(DVC), "push")
    _run(tmp_path, "git", "clone", "-q", str(repo), str(clone))
    assert not (clone / "data" / "dataset.npz").exists()
    _run(clone, str(DVC), "pull")
    assert (clone / "data" / "dataset.npz").read_bytes() == blob
    back = load_container(clone / "data" / "dataset.npz", ("train", "val", "test"))
    for s, (x, y) in splits.items():
        assert np.abs(back[s][0] - x).max() <= 1 / 255 and back[s][1].tolist() == y.tolist()
