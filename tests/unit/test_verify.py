"""greenpipe.verify: which kernels (strict or fast) each recorded training stage used, read
from its params in dvc.lock, and `greenpipe verify` saying so."""

from __future__ import annotations

import argparse

import pytest

from greenpipe.verify import Verdict, determinism

LOCK = {
    "stages": {
        "train@torch": {
            "params": {"params.yaml": {"seed": 42, "train.deterministic": True}},
        },
        "distill@torch": {  # declares its whole section: nested in dvc.lock
            "params": {"params.yaml": {"distill": {"deterministic": False, "epochs": 3}}},
        },
        "optimize@torch": {
            "params": {"params.yaml": {"distill.deterministic": True, "optimize": {}}},
        },
        "compress": {"params": {"params.yaml": {"compress": {"codec": "zlib"}}}},
    }
}


def test_determinism_reads_each_training_stages_recorded_param():
    stages = ["compress", "train@torch", "distill@torch", "optimize@torch", "gone"]
    assert determinism(LOCK, stages) == {
        "train@torch": "strict (train.deterministic: true)",
        "distill@torch": "fast (distill.deterministic: false)",
        "optimize@torch": "strict (distill.deterministic: true)",
    }
    assert determinism({}, stages) == {}  # records from before the param existed: silent


def test_greenpipe_verify_prints_the_determinism_of_the_recorded_run(monkeypatch, tmp_path, capsys):
    from greenpipe import cli, graph
    from greenpipe.flows import verify as flows_verify

    (tmp_path / "params.yaml").write_text("seed: 1\n")
    monkeypatch.setattr(graph, "stage_order", lambda root: ["train@torch"])
    verdict = Verdict(checked=["x"], determinism=determinism(LOCK, ["train@torch"]))
    monkeypatch.setattr(flows_verify, "verify", lambda *a: verdict)
    args = argparse.Namespace(root=str(tmp_path), stages=[], repeats=1, keep=False)
    assert cli.cmd_verify(args) == 0
    assert (
        "determinism of train@torch: strict (train.deterministic: true)" in capsys.readouterr().out
    )


def test_a_workspace_that_cannot_be_made_leaves_no_folder_behind(tmp_path, monkeypatch):
    """`greenpipe verify` on a folder git cannot list fails without an empty temp folder."""
    import subprocess
    import tempfile

    from greenpipe.flows.verify import make_workspace

    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    (tmp_path / "repo").mkdir()
    with pytest.raises(subprocess.CalledProcessError):
        make_workspace(tmp_path / "repo")
    assert list(scratch.iterdir()) == []
