"""Distillation judged on total cost: the KD student is charged the teacher's training.

Beside the student trained from scratch with the same architecture, initial weights and
budget, the KD student's "energy to obtain" is its own distillation plus the teacher's
training (J), so distillation is worth it only if its accuracy gain pays for both.
"""

from __future__ import annotations

from typing import Any


def distillation_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per backend: KD student against the scratch student (accuracy, J own, J charged
    for the teacher, J to obtain, and the differences KD - scratch)."""
    by = {(r["model"], r.get("backend", "")): r for r in rows}
    out = []
    for backend in sorted({r.get("backend", "") for r in rows}):
        kd, scratch = by.get(("student_kd", backend)), by.get(("student_scratch", backend))
        if kd is None or scratch is None:
            continue
        teacher_j = None
        if kd.get("obtain_j") is not None and kd.get("train_j") is not None:
            teacher_j = kd["obtain_j"] - kd["train_j"]
        out.append(
            {
                "backend": backend,
                "kd_accuracy": kd.get("accuracy"),
                "scratch_accuracy": scratch.get("accuracy"),
                "accuracy_gain": _diff(kd.get("accuracy"), scratch.get("accuracy")),
                "kd_own_j": kd.get("train_j"),
                "teacher_j": teacher_j,
                "kd_obtain_j": kd.get("obtain_j"),
                "scratch_obtain_j": scratch.get("obtain_j"),
                "extra_j": _diff(kd.get("obtain_j"), scratch.get("obtain_j")),
            }
        )
    return out


def _diff(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b
