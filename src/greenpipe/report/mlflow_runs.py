"""Points for the cross-run report, read from the parent runs of the MLflow experiment.

Each parent run (one `greenpipe run`, `dvc repro` or `dvc exp run`; a DVC experiment's name
is its `dvc.exp_name` tag) holds every stage's metrics as `<stage>/<backend>/<key path>`, for
example `evaluate/torch/models/student_kd/accuracy`; runs made before the per-framework
stages have `<stage>/<key path>` and name their framework in the `train.backend` param. They
are unflattened back into the stages' metrics dicts, so a run gives exactly the model rows
its own report showed: one point per (run, model, backend).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

from greenpipe.report.optimization import add_flags
from greenpipe.report.tables import DATA_STAGES, model_rows

MODEL_STAGES = ("train", "distill", "optimize", "evaluate")
TAG_PARETO = "greenpipe.pareto"
# params that do not change what a run computes: left out of its configuration fingerprint
NOT_CONFIG = ("seed", "experiment", "tracking.", "orchestration.", "report.")


def _put(tree: dict, path: list[str], value: float) -> None:
    """tree[path[0]][path[1]]... = value, unless a value already sits on the way."""
    for part in path[:-1]:
        tree = tree.setdefault(part, {})
        if not isinstance(tree, dict):
            return
    if path and not isinstance(tree.get(path[-1]), dict):
        tree[path[-1]] = value


def unflatten(
    metrics: dict[str, float], backends: Iterable[str], legacy_backend: str
) -> dict[str, dict[str, dict]]:
    """{backend: {stage: nested metrics}} from a parent run's flat `a/b/c` metric keys."""
    known, out, shared = set(backends), {}, {}
    for key, value in metrics.items():
        parts = key.split("/")
        if parts[0] in DATA_STAGES and len(parts) >= 2:  # shared by every framework
            _put(shared.setdefault(parts[0], {}), parts[1:], value)
        if parts[0] not in MODEL_STAGES or len(parts) < 2:
            continue
        backend, rest = (parts[1], parts[2:]) if parts[1] in known else (legacy_backend, parts[1:])
        _put(out.setdefault(backend, {}).setdefault(parts[0], {}), rest, value)
    for stages in out.values():
        stages.update(shared)
    for name, stages in out.items():
        for m in (stages.get("evaluate", {}).get("models") or {}).values():
            if isinstance(m, dict):
                m["backend"] = name
    return out


def fingerprint(params: dict[str, str]) -> str:
    """A short hash of the params that define what a run computes (all but seed, names,
    tracking, orchestration and report settings): runs that differ only by seed share it."""
    kept = {k: v for k, v in sorted(params.items()) if not k.startswith(NOT_CONFIG)}
    return hashlib.sha256(json.dumps(kept).encode()).hexdigest()[:8]


def compression_of(metrics: dict[str, float]) -> dict[str, float | None]:
    """The run's dataset compression figures (from its compress stage's metrics)."""
    return {
        "compress_ratio": metrics.get("compress/ratio"),
        "compress_train_samples": metrics.get("compress/samples_kept/train"),
        "compress_j": metrics.get("compress/energy/energy_j"),
    }


def run_points(run: Any, backends: Iterable[str], total_inferences: int) -> list[dict[str, Any]]:
    """The model rows of one parent run (flags included), each labelled with the run."""
    params = run.data.params
    per_backend = unflatten(run.data.metrics, backends, params.get("train.backend", "torch"))
    rows = [r for m in per_backend.values() for r in model_rows(m, total_inferences)]
    seed = params.get("seed")
    label = {
        "run_id": run.info.run_id,
        "run_name": run.info.run_name,
        "exp_name": run.data.tags.get("dvc.exp_name", ""),
        "seed": int(seed) if seed is not None and seed.isdigit() else None,
        "config": fingerprint(params),
        "run_params": {k: v for k, v in params.items() if not k.startswith(NOT_CONFIG)},
        "start_time": run.info.start_time,
        **compression_of(run.data.metrics),
    }
    return [{**r, **label} for r in add_flags(rows)]


def parent_runs(client: Any, experiment: str, statuses: Iterable[str] = ("FINISHED",)) -> list:
    """The experiment's parent runs (no `mlflow.parentRunId`) in the given statuses, oldest
    first; [] if the experiment does not exist."""
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        return []
    runs, token = [], None
    while True:
        page = client.search_runs([exp.experiment_id], max_results=1000, page_token=token)
        runs += list(page)
        token = getattr(page, "token", None)
        if not token:
            break
    keep = set(statuses)
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags and r.info.status in keep]
    return sorted(parents, key=lambda r: r.info.start_time or 0)


def tag_pareto(client: Any, points: list[dict], on_front: list[bool], energy: str) -> None:
    """Tag every run that gave a point `greenpipe.pareto` = "true" if one of its points is
    non-dominated, else "false"; and which of its models are on the front, for which energy."""
    front: dict[str, list[str]] = {p["run_id"]: [] for p in points}
    for p, on in zip(points, on_front, strict=True):
        if on:
            front[p["run_id"]].append(f"{p['model']}@{p['backend']}")
    for run_id, models in front.items():
        client.set_tag(run_id, TAG_PARETO, "true" if models else "false")
        client.set_tag(run_id, f"{TAG_PARETO}.energy", energy)
        client.set_tag(run_id, f"{TAG_PARETO}.models", ",".join(models) or "-")


def collect(
    client: Any,
    experiment: str,
    backends: Iterable[str],
    total_inferences: int,
    sweep: str | None = None,
) -> list:
    """Every point of every finished parent run of `experiment` (only those tagged
    `greenpipe.sweep` = `sweep` if given), oldest run first."""
    backends = list(backends)
    parents = parent_runs(client, experiment)
    if sweep is not None:
        parents = [r for r in parents if r.data.tags.get("greenpipe.sweep") == sweep]
    return [
        p
        for run in parents
        for p in run_points(run, backends, total_inferences)
        if p.get("accuracy") is not None
    ]
