"""`greenpipe verify`'s comparison: re-runs of stages against what was recorded.

The re-runs themselves (a scratch copy of the repo, `dvc repro` in it) are orchestration and
live in greenpipe.flows.verify; this module only compares what they produced:

- every cached output (data sets, models) must have the md5 recorded in dvc.lock;
- every metric that is a property of the result (accuracy, counts, sizes, ...) must be equal;
- measurements of the run itself (energy, durations, latency, throughput, memory) are not
  compared for equality: their spread across the runs is reported instead.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from pathlib import Path

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
    """What a verification found: mismatches (fail the run), measurement spreads (info), and
    the kernels each training stage of the recorded run used (`determinism`)."""

    mismatches: list[str] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)
    spread: dict[str, list[float]] = field(default_factory=dict)
    determinism: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.mismatches


def determinism(lock: dict, stages: list[str]) -> dict[str, str]:
    """{stage: "strict (train.deterministic: true)" or "fast (...: false)"} for each of
    `stages` whose entry in a parsed dvc.lock records a `deterministic` param: the kernels
    its recorded run trained with. Only strict runs are expected to re-run bit for bit on a
    GPU; on the CPU both are."""
    out = {}
    for stage in stages:
        entry = (lock.get("stages") or {}).get(stage) or {}
        params = flatten({k: v for f in (entry.get("params") or {}).values() for k, v in f.items()})
        keys = sorted(k for k in params if k.rsplit(".", 1)[-1] == "deterministic")
        if keys:
            mode = "strict" if all(params[k] for k in keys) else "fast"
            out[stage] = f"{mode} ({', '.join(f'{k}: {str(params[k]).lower()}' for k in keys)})"
    return out


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


def compare_outs(
    root: Path, recorded: dict, rerun: dict, stages: list[str], verdict: Verdict
) -> None:
    """Each stage's exact outputs must have the same md5 in the re-run's dvc.lock."""
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
