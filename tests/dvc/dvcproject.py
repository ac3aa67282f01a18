"""A throw-away DVC project and a child Python that runs the flow's repro() in it, shared by
the tests here. The child keeps the flow's stderr writes off pytest's own (in a long-lived
xdist worker they closed the worker's capture file)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

DVC = Path(sys.executable).with_name("dvc")


def dvc_project(tmp: Path, dvc_yaml: str) -> dict[str, str]:
    """`dvc init --no-scm` in tmp with this dvc.yaml; the environment a flow gives stages."""
    from greenpipe.flows.experiment import stage_env

    (tmp / "dvc.yaml").write_text(dvc_yaml)
    env = {**stage_env("parent-run", f"sqlite:///{tmp}/mlflow.db"), "DVC_NO_ANALYTICS": "1"}
    subprocess.run([str(DVC), "init", "--no-scm", "-q"], cwd=tmp, env=env, check=True)
    return env


def run_child(code: str, tmp: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    """`code` in a child Python with argv [tmp, json(env)] and env as its environment."""
    return subprocess.run(
        [sys.executable, "-c", code, str(tmp), json.dumps(env)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
