"""The report page's content from the stages' metrics: its tables, in the order shown, and
the experiment's totals of the upstream stages' energy."""

from __future__ import annotations

from greenpipe.errors import GreenpipeError
from greenpipe.report import columns as col
from greenpipe.report.classes import class_cols, class_rows
from greenpipe.report.devices import device_note
from greenpipe.report.distillation import distillation_rows
from greenpipe.report.notes import energy_intro
from greenpipe.report.optimization import add_flags, optimization_rows
from greenpipe.report.render import Table
from greenpipe.report.tables import model_rows, stage_rows
from greenpipe.report.targets import target_notes, target_rows


def build_tables(per_backend: dict, stage_metrics: dict, total_inferences: int) -> list[Table]:
    """The report's tables from {backend: {stage: metrics}} and the data stages' metrics."""
    models = [
        r
        for m in per_backend.values()
        for r in model_rows({**stage_metrics, **m}, total_inferences)
    ]
    models = add_flags(sorted(models, key=lambda r: (r["model"], r["backend"])))
    metrics = dict(stage_metrics)
    for backend, by_stage in per_backend.items():
        metrics.update({f"{st}@{backend}": m for st, m in by_stage.items()})
    targets = target_rows(models)
    tables = [
        Table("Models: quality (test split)", models, col.QUALITY_COLS),
        Table("Models: speed and size", models, col.SPEED_COLS, intro=device_note(models)),
        Table(
            "Models: energy", models, col.ENERGY_COLS, intro=energy_intro(models, total_inferences)
        ),
        Table(
            "Efficiency targets: int8 pruned KD student against the teacher",
            targets,
            col.TARGET_COLS,
            notes=target_notes(targets, models),
        ),
        Table(
            "Distillation on total cost (the teacher's training charged to the KD student)",
            distillation_rows(models),
            col.DISTILL_COLS,
        ),
        Table("Optimization: before -> after", optimization_rows(models), col.OPTIMIZATION_COLS),
        Table("Energy per stage", stage_rows(metrics), col.STAGE_COLS),
    ]
    per_class = class_rows(per_backend)  # none from records written before classes had names
    if per_class:
        per_class_intro = "Recall: the share of the class's test samples the model got right."
        tables.insert(  # after the model tables, before the stages' (always the last)
            len(tables) - 1,
            Table("Per class (test split)", per_class, class_cols(per_class), per_class_intro),
        )
    return tables


def experiment_totals(stages: list[dict]) -> dict[str, float]:
    """The upstream stages' energy added up (J, gCO2e, s), if they share one mode."""
    if len({r["tracking_mode"] for r in stages}) > 1:
        raise GreenpipeError(
            "the stages' energy figures were measured in different CodeCarbon modes; "
            "re-run them in one (dvc repro --force) before adding them up"
        )
    keys = ("energy_j", "active_energy_j", "cpu_j", "gpu_j", "ram_j")
    out = {k: sum(r[k] or 0.0 for r in stages) for k in (*keys, "emissions_g", "duration_s")}
    out["stages"] = len(stages)
    return out
