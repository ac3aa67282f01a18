"""`greenpipe verify`: re-run stages in a throw-away workspace and compare with what was recorded.

The workspace is a copy of the repo's files that shares the repo's DVC cache (read-mostly: a
re-run only adds content-addressed objects). Stages are forced to run again there, with their
own MLflow store, so the experiment's records are untouched. Then:

- every cached output (data sets, models) must have the md5 recorded in dvc.lock;
- every metric that is a property of the result (accuracy, counts, sizes, ...) must be equal;
- measurements of the run itself (energy, durations, latency, throughput, memory) are not
  compared for equality: their spread across the runs is reported instead.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from greenpipe.tracking.provenance import flatten, stage_metric_paths, stage_spec

MEASURED = (
    "energy",
    "latency",
    "throughput",
    "duration",
    "power",
    "emissions",
    "inferences",
    "memory",
    "rss",
    "seconds",
    "device",
    "threads",
)
UNITS = ("_s", "_j", "_w", "_g")  # a key that ends in a unit of time, energy or power


def is_measurement(key: str) -> bool:
    """True for metrics that measure the run (time, energy, speed), not its result."""
    k = key.lower()
    return any(m in k for m in MEASURED) or k.endswith(UNITS)


@dataclass
class Verdict:
    """What a verification found: mismatches (fail the run) and measurement spreads (info)."""

    mismatches: list[str] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)
    spread: dict[str, list[float]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.mismatches


def lock_outs(lock: dict, stage: str) -> dict[str, str]:
    """{path: md5} of a stage's outputs in a parsed dvc.lock."""
    entry = (lock.get("stages") or {}).get(stage) or {}
    return {o["path"]: o.get("md5", "") for o in entry.get("outs", [])}


def exact_outputs(root: Path, stage: str) -> list[str]:
    """Outputs that must be byte-identical: cached outs (data, models) and plot data (curves).

    The stages' records (metrics/) are compared key by key instead, and uncached reports
    embed energy figures.
    """
    spec, paths, records = stage_spec(root, stage), [], set(stage_metric_paths(root, stage))
    for entry in spec.get("outs", []) or []:
        path, opts = next(iter(entry.items())) if isinstance(entry, dict) else (entry, {})
        if (opts or {}).get("cache", True) and path not in records:
            paths.append(path)
    for entry in spec.get("plots", []) or []:
        paths.append(next(iter(entry)) if isinstance(entry, dict) else entry)
    return paths


def compare_outs(root: Path, recorded: dict, rerun: dict, stages: list[str], verdict) -> None:
    for stage in stages:
        want, got = lock_outs(recorded, stage), lock_outs(rerun, stage)
        for path in exact_outputs(root, stage):
            verdict.checked.append(path)
            if got.get(path) != want.get(path):
                verdict.mismatches.append(
                    f"{stage}: output {path} differs (recorded md5 {str(want.get(path))[:12]}, "
                    f"re-run {str(got.get(path))[:12]})"
                )


def compare_metrics(path: str, recorded: dict, reruns: list[dict], verdict: Verdict) -> None:
    """Result metrics must be equal in every re-run; measurements go to the spread table."""
    want = flatten(recorded)
    for i, rerun in enumerate(reruns, 1):
        got = flatten(rerun)
        for key in sorted(set(want) | set(got)):
            if is_measurement(key):
                continue
            if want.get(key) != got.get(key):
                verdict.mismatches.append(
                    f"{path}: {key} = {want.get(key)!r} recorded, {got.get(key)!r} in re-run {i}"
                )
    for key, value in want.items():
        if is_measurement(key) and isinstance(value, int | float) and not isinstance(value, bool):
            values = [value] + [flatten(r).get(key) for r in reruns]
            verdict.spread[f"{path}:{key}"] = [v for v in values if isinstance(v, int | float)]
    verdict.checked.append(path)


def spread_rows(spread: dict[str, list[float]]) -> list[tuple[str, float, float, float]]:
    """(metric, mean, stdev, relative stdev) for each measurement across recorded + re-runs."""
    rows = []
    for key, values in sorted(spread.items()):
        if len(values) < 2:
            continue
        mean = statistics.fmean(values)
        sd = statistics.stdev(values)
        rows.append((key, mean, sd, sd / abs(mean) if mean else 0.0))
    return rows


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
    ws = Path(tempfile.mkdtemp(prefix="greenpipe-verify-"))
    for rel in repo_files(root):
        (ws / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / rel, ws / rel)
    cache = (root / ".dvc" / "cache").resolve()
    (ws / ".dvc" / "config.local").write_text(
        f"[core]\n    no_scm = true\n[cache]\n    dir = {cache}\n    type = copy\n"
    )
    return ws


def stage_env(ws: Path) -> dict[str, str]:
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
    return yaml.safe_load((ws / "dvc.lock").read_text())


def read_json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def verify(root: Path, stages: list[str], repeats: int = 1, keep: bool = False) -> Verdict:
    """Re-run `stages` `repeats` times in fresh workspaces and compare with the records."""
    recorded = (
        yaml.safe_load((root / "dvc.lock").read_text()) if (root / "dvc.lock").is_file() else {}
    )
    missing = [s for s in stages if s not in (recorded.get("stages") or {})]
    if missing:
        from greenpipe.errors import UsageError

        raise UsageError(
            f"no record of stage(s) {missing} in dvc.lock; run them first "
            "(greenpipe run) and verify afterwards"
        )
    verdict, reruns = Verdict(), []
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
