"""greenpipe.report: energy to obtain along the model lineage, optimization flags, the
efficiency targets and distillation on total cost, on hand-made rows."""

from __future__ import annotations

import pytest

from greenpipe.report.distillation import distillation_rows
from greenpipe.report.optimization import add_flags, flag, optimization_rows
from greenpipe.report.tables import energy_to_obtain, model_rows
from greenpipe.report.targets import target_notes, target_rows

TEACHER, KD, SCRATCH, Q, PRUNE, PQ = 4e-5, 5e-5, 3e-5, 1e-6, 2e-5, 5e-7


@pytest.fixture
def metrics() -> dict:
    """Stage metrics in the layout the stages write (optimize: one block per derived model)."""
    return {
        "train": {"energy": {"energy_j": TEACHER}},
        "distill": {
            "student_kd": {"energy_j": KD},
            "student_scratch": {"energy_j": SCRATCH},
        },
        "optimize": {
            "energy": {"energy_j": 1.0},  # the whole stage: never charged to one model
            "student_kd_int8": {"energy_j": Q},
            "student_kd_pruned": {"energy_j": PRUNE},
            "student_kd_pruned_int8": {"energy_j": PQ},
        },
    }


def test_energy_to_obtain_follows_the_lineage(metrics):
    def obtain(name):
        return energy_to_obtain(name, metrics)["obtain_j"]

    assert obtain("teacher") == TEACHER and obtain("student_scratch") == SCRATCH
    assert obtain("student_kd") == pytest.approx(TEACHER + KD)
    assert obtain("student_kd_int8") == pytest.approx(TEACHER + KD + Q)
    assert obtain("student_kd_pruned") == pytest.approx(TEACHER + KD + PRUNE)
    assert obtain("student_kd_pruned_int8") == pytest.approx(TEACHER + KD + PRUNE + PQ)
    assert energy_to_obtain("student_kd_pruned_int8", metrics)["own_j"] == PQ


def test_unknown_upstream_energy_makes_the_total_unknown(metrics):
    del metrics["optimize"]["student_kd_pruned"]
    assert energy_to_obtain("student_kd_pruned_int8", metrics)["obtain_j"] is None
    assert energy_to_obtain("student_kd_int8", metrics)["obtain_j"] == pytest.approx(
        TEACHER + KD + Q
    )


def _row(model, size_kb, p50, p50_batch, acc=0.97, backend="torch", **kw):
    return {
        "model": model,
        "backend": backend,
        "size_kb": size_kb,
        "latency_p50_ms": p50,
        "latency_batch_p50_ms": p50_batch,
        "latency_batch_size": 32,
        "accuracy": acc,
        **kw,
    }


def test_flag_names_what_is_not_a_gain():
    parent = _row("student_kd", 100.0, 0.20, 1.0)
    assert flag(_row("x_int8", 30.0, 0.10, 0.5), parent) == ""
    assert flag(_row("x_int8", 30.0, 0.30, 0.5), parent) == "not faster at batch 1"
    # masked, not smaller: same size, within the 5% noise margin on speed
    assert flag(_row("x_pruned", 100.0, 0.195, 0.99), parent) == (
        "not smaller; not faster at batch 1; not faster at batch 32"
    )
    assert flag(_row("x_int8", 30.0, 0.1, None), parent) == "batch latency not measured"


def test_add_flags_only_on_optimized_models_with_an_evaluated_parent():
    rows = [
        _row("student_kd", 100.0, 0.2, 1.0),
        _row("student_kd_int8", 30.0, 0.3, 0.5, source="student_kd"),
        _row("student_kd_pruned_int8", 10.0, 0.1, 0.3, source="student_kd_pruned"),  # no parent
        _row("student_kd_int8", 30.0, 0.1, 0.5, backend="tensorflow", source="student_kd"),
    ]
    flags = [r["flag"] for r in add_flags(rows)]
    assert flags == ["", "not faster at batch 1", "", ""]
    (opt,) = optimization_rows(rows)
    assert opt["model"] == "student_kd_int8" and opt["backend"] == "torch"
    assert opt["size_kb_before"] == 100.0 and opt["size_kb_after"] == 30.0
    assert opt["flag"] == "not faster at batch 1"


def _eval_metrics(**models) -> dict:
    return {"evaluate": {"models": {k: {"backend": "torch", **v} for k, v in models.items()}}}


def test_targets_compare_the_candidate_with_the_teacher():
    rows = model_rows(
        _eval_metrics(
            teacher={
                "accuracy": 0.99,
                "params": 1000,
                "energy_per_1k_j": 4e-7,
                "latency_p50_ms": 0.4,
                "latency_batch_p50_ms": 2.0,
            },
            student_kd_pruned={"latency_p50_ms": 0.1},
            student_kd_pruned_int8={
                "accuracy": 0.97,
                "params": 90,
                "energy_per_1k_j": 1e-7,
                "latency_p50_ms": 0.2,
                "latency_batch_p50_ms": None,
            },
        ),
        1000,
    )
    by = {t["criterion"]: t for t in target_rows(rows)}
    assert by["test accuracy"]["ratio"] == pytest.approx(0.97 / 0.99)
    assert by["test accuracy"]["verdict"] == "met"
    assert by["parameters"]["verdict"] == "met" and by["parameters"]["target"] == "<= 0.1"
    assert by["energy per 1,000 inferences"]["ratio"] == pytest.approx(0.25)
    assert by["energy per 1,000 inferences"]["verdict"] == "met"
    assert by["latency p50, batch 1"]["verdict"] == "NOT met"
    assert by["latency p50, larger batch"]["verdict"] == "not measured"
    (note,) = target_notes(list(by.values()), rows)
    assert note.startswith("torch: student_kd_pruned_int8 meets 3 of 5 targets")
    assert "latency p50, batch 1 NOT met (ratio 0.500" in note
    assert "no faster than its float parent (0.100 ms)" in note


def test_no_candidate_no_targets():
    rows = model_rows(_eval_metrics(teacher={"accuracy": 0.9}), 1000)
    assert target_rows(rows) == []
    assert "nothing to check" in target_notes([], rows)[0]


def test_distillation_charges_the_teacher_to_the_kd_student(metrics):
    metrics["evaluate"] = {
        "models": {
            "teacher": {"accuracy": 0.99, "backend": "torch"},
            "student_kd": {"accuracy": 0.975, "backend": "torch"},
            "student_scratch": {"accuracy": 0.97, "backend": "torch"},
        }
    }
    (row,) = distillation_rows(model_rows(metrics, 0))
    assert row["accuracy_gain"] == pytest.approx(0.005)
    assert row["kd_own_j"] == KD and row["teacher_j"] == pytest.approx(TEACHER)
    assert row["kd_obtain_j"] == pytest.approx(TEACHER + KD)
    assert row["extra_j"] == pytest.approx(TEACHER + KD - SCRATCH)


def test_flag_names_the_batch_size_as_an_integer_even_from_mlflow_floats():
    source = {"size_kb": 10.0, "latency_p50_ms": 1.0, "latency_batch_p50_ms": 1.0}
    row = {"size_kb": 5.0, "latency_p50_ms": 0.5, "latency_batch_p50_ms": 2.0}
    assert flag({**row, "latency_batch_size": 32.0}, source) == "not faster at batch 32"
    assert flag(row, source) == "not faster at batch N"
