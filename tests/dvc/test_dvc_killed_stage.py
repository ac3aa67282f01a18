"""A stage killed by a signal, through real DVC the way the experiment flow runs it: DVC exits
255 whatever happened and runs the stage's cmd through $SHELL (dash forks it and reports
128+N, bash execs it and DVC sees -N); the flow must still say which signal killed the stage,
not quote the stage's last progress-bar line as its error."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from greenpipe.errors import StageFailed, exit_code_for, one_line

DVC = Path(sys.executable).with_name("dvc")
pytestmark = pytest.mark.skipif(not DVC.exists(), reason="needs dvc")
SHELLS = [s for s in ("/bin/sh", "/bin/bash") if Path(s).exists()]

# a stage that draws a progress bar (as train does, with \r) and is killed mid-way
DIES = """\
import os, signal, sys
sys.stderr.write("train teacher [tensorflow]:   2%|2         | 1/50 [00:01<01:10]\\r")
sys.stderr.flush()
os.kill(os.getpid(), signal.SIG{sig})
"""
FAILS = """\
import sys
sys.stderr.write("epoch 1\\rgreenpipe error: data.path 'x.npz' is empty; fix data.path\\n")
sys.exit(1)
"""


def _project(tmp: Path, script: str) -> dict[str, str]:
    from greenpipe.flows.experiment import stage_env

    (tmp / "stage.py").write_text(script)
    (tmp / "dvc.yaml").write_text(
        "stages:\n  train:\n    cmd: python stage.py\n    outs:\n      - out.txt\n"
    )
    env = {**stage_env("parent-run", f"sqlite:///{tmp}/mlflow.db"), "DVC_NO_ANALYTICS": "1"}
    subprocess.run([str(DVC), "init", "--no-scm", "-q"], cwd=tmp, env=env, check=True)
    return env


def _repro(tmp: Path, env: dict[str, str]) -> StageFailed:
    from greenpipe.flows.experiment import repro

    with pytest.raises(StageFailed) as ei:
        repro("train", str(tmp), env)
    return ei.value


@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize("sig, num", [("KILL", 9), ("TERM", 15)])
def test_a_stage_killed_by_a_signal_is_reported_as_killed(tmp_path, capfd, shell, sig, num):
    env = {**_project(tmp_path, DIES.format(sig=sig)), "SHELL": shell}
    exc = _repro(tmp_path, env)
    text = one_line(exc)
    assert text.startswith(
        f"greenpipe error: stage 'train' was killed by signal {num} (SIG{sig}); "
    ), text
    assert "2%|" not in text and "\n" not in text
    assert exc.signum == num and exit_code_for(exc) == 1  # a run-time failure, as documented
    # the console got the stage's own output, not DVC's error line (the flow reports it)
    err = capfd.readouterr().err
    assert "train teacher [tensorflow]" in err and "failed to reproduce" not in err


@pytest.mark.skipif(not shutil.which("bash"), reason="needs bash")
def test_a_stage_that_fails_keeps_its_own_line_and_status(tmp_path, capfd):
    env = {**_project(tmp_path, FAILS), "SHELL": shutil.which("bash")}
    exc = _repro(tmp_path, env)
    assert str(exc) == "stage 'train' failed (exit 1): data.path 'x.npz' is empty; fix data.path"
    assert exc.signum is None
    err = capfd.readouterr().err
    assert "greenpipe error: data.path" in err and "failed to reproduce" not in err
