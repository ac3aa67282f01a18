"""greenpipe.report.mlflow_runs: points from MLflow parent runs, and the Pareto tags."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from parent_runs import BACKENDS, flat_metrics, parent_run

from greenpipe.report.mlflow_runs import fingerprint, run_points, tag_pareto, unflatten


def test_unflatten_rebuilds_the_stage_metrics_per_backend():
    flat = {**flat_metrics(0.97, 0.96), "evaluate/models/teacher/accuracy": 0.5}  # legacy key
    tree = unflatten(flat, BACKENDS, legacy_backend="torch-old")
    assert tree["torch"]["distill"]["student_kd"]["energy_j"] == 5e-5
    assert tree["torch"]["evaluate"]["models"]["student_kd"] == {
        "accuracy": 0.97,
        "energy_per_1k_j": 5e-8,
        "params": 22602.0,
        "backend": "torch",
    }
    assert tree["torch-old"]["evaluate"]["models"]["teacher"]["accuracy"] == 0.5
    # the data stages are shared: every framework's models are charged them
    assert tree["torch"]["prepare"]["energy"]["energy_j"] == 1e-7
    assert tree["torch-old"]["prepare"] == tree["torch"]["prepare"]


def test_fingerprint_ignores_seed_and_bookkeeping_only():
    a = {"seed": "1", "distill.alpha": "0.7", "tracking.mlflow_uri": "a", "report.title": "t"}
    assert fingerprint(a) == fingerprint({**a, "seed": "2", "tracking.mlflow_uri": "b"})
    assert fingerprint(a) != fingerprint({**a, "distill.alpha": "0.5"})


def test_run_points_one_per_model_with_the_run_label():
    points = run_points(parent_run("r1", 3, flat_metrics(0.97, 0.96), 10), BACKENDS, 1000)
    by = {p["model"]: p for p in points}
    assert set(by) == {"teacher", "student_kd", "student_scratch"}
    kd = by["student_kd"]
    assert kd["seed"] == 3 and kd["run_id"] == "r1" and kd["exp_name"] == "e"
    assert kd["params"] == 22602 and kd["run_params"] == {"distill.alpha": "0.7"}
    assert kd["obtain_j"] == pytest.approx(9e-5)  # the teacher's training is charged
    assert kd["total_j"] == pytest.approx(9e-5 + 5e-8)


def test_tag_pareto_tags_every_run_true_or_false():
    tags = {}
    client = SimpleNamespace(set_tag=lambda run, k, v: tags.__setitem__((run, k), v))
    pts = [
        {"run_id": "a", "model": "m", "backend": "torch"},
        {"run_id": "a", "model": "n", "backend": "tensorflow"},
        {"run_id": "b", "model": "m", "backend": "torch"},
    ]
    tag_pareto(client, pts, [False, True, False], "total")
    assert tags[("a", "greenpipe.pareto")] == "true" and tags[("b", "greenpipe.pareto")] == "false"
    assert tags[("a", "greenpipe.pareto.models")] == "n@tensorflow"
    assert tags[("b", "greenpipe.pareto.models")] == "-"
    assert tags[("b", "greenpipe.pareto.energy")] == "total"
