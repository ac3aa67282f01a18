"""The experiment flow runs each stage through DVC's Python API in its own process (issue 17:
a `dvc` process per stage cost 1.2-1.5 s of start-up), with the stage's stderr still shown
live and its outputs and dvc.lock as `dvc repro --single-item` leaves them."""

from __future__ import annotations

import subprocess

import pytest
from dvcproject import DVC, dvc_project, run_child

pytestmark = pytest.mark.skipif(not DVC.exists(), reason="needs dvc")

# the shell DVC runs the cmd with reports its parent: the process that ran DVC
STAGE = "echo $PPID > parent.txt && echo 'epoch 1/1 done' >&2"
RUN = """\
import json, os, sys
from greenpipe.flows.experiment import repro
repro("make", sys.argv[1], json.loads(sys.argv[2]))
print(os.getpid())
"""


def test_the_flow_runs_a_stage_without_a_dvc_process(tmp_path):
    yaml = f'stages:\n  make:\n    cmd: "{STAGE}"\n    outs:\n      - parent.txt\n'
    env = dvc_project(tmp_path, yaml)
    proc = run_child(RUN, tmp_path, env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    flow_pid = int(proc.stdout.strip().splitlines()[-1])
    assert int((tmp_path / "parent.txt").read_text()) == flow_pid  # no dvc process between
    assert "epoch 1/1 done" in proc.stderr  # the stage's stderr reached the console
    assert "make:" in (tmp_path / "dvc.lock").read_text()
    status = subprocess.run(
        [str(DVC), "status", "make"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert "up to date" in status.stdout, status.stdout
