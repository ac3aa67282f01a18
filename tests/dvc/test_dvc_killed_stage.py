"""A stage killed by a signal, through real DVC the way the experiment flow runs it: DVC exits
255 whatever happened and runs the stage's cmd through $SHELL (dash forks it and reports
128+N, bash execs it and DVC sees -N); the flow must still say which signal killed the stage,
not quote the stage's last progress-bar line as its error."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from dvcproject import DVC, dvc_project, run_child

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
    (tmp / "stage.py").write_text(script)
    return dvc_project(
        tmp, "stages:\n  train:\n    cmd: python stage.py\n    outs:\n      - out.txt\n"
    )


RUN = """\
import json, sys
from greenpipe.errors import StageFailed, exit_code_for, one_line
from greenpipe.flows.experiment import repro
try:
    repro("train", sys.argv[1], json.loads(sys.argv[2]))
except StageFailed as exc:
    print(json.dumps({"str": str(exc), "line": one_line(exc), "signum": exc.signum,
                      "code": exit_code_for(exc)}))
"""


def _repro(tmp: Path, env: dict[str, str]) -> tuple[dict, str]:
    """(the StageFailed as a dict, what the flow showed on stderr)."""
    import json

    proc = run_child(RUN, tmp, env)
    assert proc.stdout.strip(), f"repro raised no StageFailed:\n{proc.stderr[-2000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1]), proc.stderr


@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize("sig, num", [("KILL", 9), ("TERM", 15)])
def test_a_stage_killed_by_a_signal_is_reported_as_killed(tmp_path, shell, sig, num):
    env = {**_project(tmp_path, DIES.format(sig=sig)), "SHELL": shell}
    exc, err = _repro(tmp_path, env)
    text = exc["line"]
    assert text.startswith(
        f"greenpipe error: stage 'train' was killed by signal {num} (SIG{sig}); "
    ), text
    assert "2%|" not in text and "\n" not in text
    assert exc["signum"] == num and exc["code"] == 1  # a run-time failure, as documented
    # the console got the stage's own output, not DVC's error line (the flow reports it)
    assert "train teacher [tensorflow]" in err and "failed to reproduce" not in err


@pytest.mark.skipif(not shutil.which("bash"), reason="needs bash")
def test_a_stage_that_fails_keeps_its_own_line_and_status(tmp_path):
    env = {**_project(tmp_path, FAILS), "SHELL": shutil.which("bash")}
    exc, err = _repro(tmp_path, env)
    assert exc["str"] == "stage 'train' failed (exit 1): data.path 'x.npz' is empty; fix data.path"
    assert exc["signum"] is None
    assert "greenpipe error: data.path" in err and "failed to reproduce" not in err
