"""`greenpipe verify`'s re-runs: stages forced to run again in throw-away workspaces.

A workspace is a copy of the repo's files that shares the repo's DVC cache (read-mostly: a
re-run only adds content-addressed objects). Stages run there through `dvc repro`, with their
own MLflow store, so the experiment's records are untouched; greenpipe.verify then compares
what they produced with what was recorded.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

from greenpipe.errors import UsageError
from greenpipe.tracking import recorder, records
from greenpipe.tracking.provenance import stage_metric_paths
from greenpipe.verify import Verdict, compare_metrics, compare_outs, determinism


def repo_files(root: Path) -> list[str]:
    """The repo's tracked and new (not ignored) files, relative to root."""
    out = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return [f for f in out if (root / f).is_file()]


def make_workspace(root: Path) -> Path:
    """A copy of the repo's files sharing its DVC cache, with outputs checked out."""
    files = repo_files(root)  # before the folder: a root git cannot list leaves none behind
    ws = Path(tempfile.mkdtemp(prefix="greenpipe-verify-"))
    try:
        for rel in files:
            (ws / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(root / rel, ws / rel)
    except BaseException:
        shutil.rmtree(ws, ignore_errors=True)
        raise
    cache = (root / ".dvc" / "cache").resolve()
    (ws / ".dvc" / "config.local").write_text(
        f"[core]\n    no_scm = true\n[cache]\n    dir = {cache}\n    type = copy\n"
    )
    return ws


def stage_env(ws: Path) -> dict[str, str]:
    """This environment for a re-run in `ws`: no parent run, the workspace's own MLflow store."""
    env = {k: v for k, v in os.environ.items() if k not in ("GREENPIPE_PARENT_RUN_ID",)}
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{ws / 'verify-mlflow.db'}"
    return env


def rerun(ws: Path, stages: list[str]) -> dict[str, Any]:
    """Force the stages to run again in ws; return the new dvc.lock."""
    dvc = str(Path(sys.executable).parent / "dvc")
    env = stage_env(ws)
    subprocess.run([dvc, "checkout", "--quiet"], cwd=ws, env=env, check=False)
    for stage in stages:
        proc = subprocess.run(
            [dvc, "repro", "--quiet", "--force", "--single-item", stage], cwd=ws, env=env
        )
        if proc.returncode != 0:
            raise RuntimeError(f"stage {stage} failed in the verification workspace {ws}")
    # the re-runs' records into the workspace's own MLflow store before it can be removed
    recorder.flush(records.folder(ws, {}))
    return yaml.safe_load((ws / "dvc.lock").read_text())


def read_json(path: Path) -> dict:
    """A metrics file, or {} where the re-run wrote none."""
    return json.loads(path.read_text()) if path.is_file() else {}


def verify(root: Path, stages: list[str], repeats: int = 1, keep: bool = False) -> Verdict:
    """Re-run `stages` `repeats` times in fresh workspaces and compare with the records."""
    recorded = (
        yaml.safe_load((root / "dvc.lock").read_text()) if (root / "dvc.lock").is_file() else {}
    )
    missing = [s for s in stages if s not in (recorded.get("stages") or {})]
    if missing:
        raise UsageError(
            f"no record of stage(s) {missing} in dvc.lock; run them first "
            "(greenpipe run) and verify afterwards"
        )
    verdict, reruns = Verdict(determinism=determinism(recorded, stages)), []
    for _ in range(repeats):
        ws = make_workspace(root)
        try:
            lock = rerun(ws, stages)
            compare_outs(root, recorded, lock, stages, verdict)
            reruns.append(
                {m: read_json(ws / m) for s in stages for m in stage_metric_paths(root, s)}
            )
        finally:
            if not keep:
                shutil.rmtree(ws, ignore_errors=True)
    for stage in stages:
        for m in stage_metric_paths(root, stage):
            compare_metrics(m, read_json(root / m), [r.get(m, {}) for r in reruns], verdict)
    verdict.mismatches = list(dict.fromkeys(verdict.mismatches))
    return verdict
