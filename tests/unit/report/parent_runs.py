"""MLflow parent runs as the report reads them, for the cross-run report's tests: a run's
flat metrics, the run itself, and the points of five runs (three seeds of one configuration,
a superseded run, another configuration)."""

from __future__ import annotations

from types import SimpleNamespace

from greenpipe.report.mlflow_runs import run_points

BACKENDS = ["torch", "tensorflow"]


def flat_metrics(acc_kd: float, acc_scratch: float, backend: str = "torch") -> dict[str, float]:
    """A parent run's metrics as stage_run logs them: <stage>/<backend>/<path>."""
    ev = f"evaluate/{backend}/models"
    return {
        f"train/{backend}/energy/energy_j": 4e-5,
        f"distill/{backend}/student_kd/energy_j": 5e-5,
        f"distill/{backend}/student_scratch/energy_j": 2e-5,
        f"{ev}/teacher/accuracy": 0.99,
        f"{ev}/teacher/energy_per_1k_j": 2e-7,
        f"{ev}/student_kd/accuracy": acc_kd,
        f"{ev}/student_kd/energy_per_1k_j": 5e-8,
        f"{ev}/student_kd/params": 22602.0,
        f"{ev}/student_scratch/accuracy": acc_scratch,
        f"{ev}/student_scratch/energy_per_1k_j": 5e-8,
        "prepare/energy/energy_j": 1e-7,
    }


def parent_run(run_id: str, seed: int, metrics: dict, start: int, **params) -> SimpleNamespace:
    """A finished parent run as MlflowClient.search_runs returns it."""
    params = {"seed": str(seed), "distill.alpha": "0.7", "tracking.mlflow_uri": "x", **params}
    return SimpleNamespace(
        info=SimpleNamespace(run_id=run_id, run_name=f"run {run_id}", start_time=start),
        data=SimpleNamespace(metrics=metrics, params=params, tags={"dvc.exp_name": "e"}),
    )


def points_of(*runs: SimpleNamespace) -> list[dict]:
    return [p for r in runs for p in run_points(r, BACKENDS, 1000)]


def sample_points() -> list[dict]:
    """Seeds 1-3 of one configuration (a, b, c), seed 1 of it run before (old, superseded
    by a) and seed 7 of another configuration (distill.alpha 0.1)."""
    return points_of(
        parent_run("a", 1, flat_metrics(0.97, 0.96), 1),
        parent_run("b", 2, flat_metrics(0.98, 0.98), 2),
        parent_run("c", 3, flat_metrics(0.96, 0.97), 3),
        parent_run("old", 1, flat_metrics(0.10, 0.10), 0),
        parent_run("other", 7, flat_metrics(0.99, 0.99), 4, **{"distill.alpha": "0.1"}),
    )


def two_more_seeds() -> list[dict]:
    """Seeds 8 and 9 of the other configuration (one run under another tracking URI, which
    is bookkeeping): with sample_points, two configurations of three seeds, this one the
    more recent."""
    alpha = {"distill.alpha": "0.1"}
    return points_of(
        parent_run("x", 8, flat_metrics(0.9, 0.9), 9, **alpha),
        parent_run("y", 9, flat_metrics(0.9, 0.9), 9, **alpha, **{"tracking.mlflow_uri": "z"}),
    )
