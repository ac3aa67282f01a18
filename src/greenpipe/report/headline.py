"""The experiment's headline: the few figures that `dvc exp show`, `dvc metrics show` and the
MLflow runs table put side by side, and the per-model rows that `dvc plots diff` draws.

`dvc exp show` prints one column per metric key, named by its whole dotted path, and its
`--only-changed` keeps every column whose value differs between the rows. Energy figures
differ on every re-run, so each one in the headline is a column after any change: the
headline keeps, per framework, the three trained models a change of the distillation or
training settings moves (teacher, KD student, scratch student) with their accuracy, the
J to obtain the teacher and the KD student (the student's includes the teacher's), and the
experiment's totals. Every model's full figures (active energy, J per 1,000 inferences,
latency, size) are in `models.csv` and in the stages' records under metrics/.
"""

from __future__ import annotations

import csv
import io
from typing import Any

# headline key -> model name: the trained models; optimized models are in models.csv
HEADLINE_MODELS = {"teacher": "teacher", "kd": "student_kd", "scratch": "student_scratch"}
# the models whose energy to obtain the headline carries (scratch's is re-measured by
# every distill run, so after a KD-only change it would be one more changed column of noise)
WITH_ENERGY = ("teacher", "kd")
CSV_COLUMNS = (
    "model",
    "backend",
    "accuracy",
    "obtain_j",
    "obtain_active_j",
    "energy_per_1k_j",
    "active_energy_per_1k_j",
    "params",
)


def headline(models: list[dict[str, Any]], totals: dict[str, Any]) -> dict[str, Any]:
    """{backend: {teacher|kd|scratch: {"acc", "obtain_j"}}, "total": {...}} from the
    report's model rows and the upstream totals (J, gCO2e, s; every stage but the report).
    Accuracy is the test-split fraction; a figure that is unknown is left out."""
    out: dict[str, Any] = {}
    for row in models:
        short = next((k for k, v in HEADLINE_MODELS.items() if v == row["model"]), None)
        if short is None:
            continue
        entry = {"acc": row.get("accuracy")}
        if short in WITH_ENERGY:
            entry["obtain_j"] = row.get("obtain_j")
        out.setdefault(row["backend"], {})[short] = {
            k: v for k, v in entry.items() if v is not None
        }
    out["total"] = {
        "energy_j": totals.get("energy_j"),
        "active_j": totals.get("active_energy_j"),
        "emissions_g": totals.get("emissions_g"),
    }
    return out


def models_csv(models: list[dict[str, Any]]) -> str:
    """One row per model (`model@backend`), for `dvc plots`: accuracy against J to obtain
    and J per 1,000 inferences. Unknown figures are empty cells."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for row in sorted(models, key=lambda r: (r["backend"], r["model"])):
        cells = dict(row, model=f"{row['model']}@{row['backend']}")
        w.writerow(["" if cells.get(c) is None else cells[c] for c in CSV_COLUMNS])
    return buf.getvalue()
