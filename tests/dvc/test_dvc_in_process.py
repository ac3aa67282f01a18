"""The experiment flow runs each stage through DVC's Python API in its own process (issue 17:
a `dvc` process per stage cost 1.2-1.5 s of start-up), with the stage's stderr still shown
live and its outputs and dvc.lock as `dvc repro --single-item` leaves them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

DVC = Path(sys.executable).with_name("dvc")
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
    from greenpipe.flows.experiment import stage_env

    (tmp_path / "dvc.yaml").write_text(
        f'stages:\n  make:\n    cmd: "{STAGE}"\n    outs:\n      - parent.txt\n'
    )
    env = {**stage_env("parent-run", f"sqlite:///{tmp_path}/mlflow.db"), "DVC_NO_ANALYTICS": "1"}
    subprocess.run([str(DVC), "init", "--no-scm", "-q"], cwd=tmp_path, env=env, check=True)
    proc = subprocess.run(
        [sys.executable, "-c", RUN, str(tmp_path), json.dumps(env)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    flow_pid = int(proc.stdout.strip().splitlines()[-1])
    assert int((tmp_path / "parent.txt").read_text()) == flow_pid  # no dvc process between
    assert "epoch 1/1 done" in proc.stderr  # the stage's stderr reached the console
    assert "make:" in (tmp_path / "dvc.lock").read_text()
    status = subprocess.run(
        [str(DVC), "status", "make"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert "up to date" in status.stdout, status.stdout
