"""report: Markdown and HTML report of one experiment (what it found first: the best model
per criterion and what each technique bought; then every model's quality, speed and energy
with its flags, the efficiency targets, distillation charged with the teacher's energy,
optimization before and after, every stage's energy), a PNG of accuracy against energy and
one of the energy per stage; all logged to MLflow as artifacts."""

from __future__ import annotations

import os
from pathlib import Path

from greenpipe import artifacts
from greenpipe.entry import load, main_of, stage_parser
from greenpipe.errors import GreenpipeError
from greenpipe.report import columns as col
from greenpipe.report.classes import class_cols, class_rows
from greenpipe.report.distillation import distillation_rows
from greenpipe.report.findings import findings
from greenpipe.report.headline import headline, models_csv
from greenpipe.report.optimization import add_flags, optimization_rows
from greenpipe.report.plot import accuracy_energy_png, energy_stages_png
from greenpipe.report.render import Image, Page, Table, html_page, markdown
from greenpipe.report.tables import model_rows, not_made, stage_rows
from greenpipe.report.targets import target_notes, target_rows
from greenpipe.report.units import RULE, si
from greenpipe.tracking.stage import stage_run


def notes_for(stages: list[dict]) -> list[str]:
    sources = sorted({r["source"] for r in stages if r["source"]})
    notes = [RULE, *(f"Energy source: {s}." for s in sources)]
    notes.append(
        "'measured' = read from a hardware energy counter (RAPL, NVML); 'estimated' = "
        "CodeCarbon's power model (CPU TDP x load, RAM size). Figures are as reported, "
        "not smoothed."
    )
    notes.append(
        "To obtain = the window that made the model (from building or loading it to its "
        "saved file) plus those of the models it comes from: the teacher's for distilled "
        "students, the student's for pruned and int8 models. Stage set-up and evaluation are "
        "outside every window; the data stages, shared by all models, are given apart. "
        "The report stage's own energy is in metrics/report.json."
    )
    notes.extend(idle_notes(stages))
    notes.append(
        "CI: percentile bootstrap interval of the test accuracy / macro-F1 (evaluate.confidence, "
        "evaluate.bootstrap_samples resamples, seeded). Per 1k inferences: mean ± sample "
        "standard deviation over evaluate.energy_repeats CodeCarbon tasks."
    )
    notes.append(
        "tensorflow: int8 models run in the TFLite interpreter, float models in Keras "
        "(tf.function), so part of an int8 model's speed-up is the lighter runtime, not only "
        "the int8 arithmetic."
    )
    notes.append(
        "flag: an optimized model that is not at least 5% smaller, or not at least 5% faster "
        "(median latency at batch 1 and at the larger batch) than the model it came from, "
        "is flagged, not counted as a gain."
    )
    return notes


def idle_notes(stages: list[dict]) -> list[str]:
    """What the active figures subtract: the idle window's power and spread, per mode."""
    seen = {}
    for r in stages:
        if r.get("idle_power_w") is not None:
            seen.setdefault(r["tracking_mode"], r)
    out = [
        f"Active = gross - idle power x duration, per component, never below zero. Idle "
        f"({mode} mode): {r['idle_power_w']:.2f} W (CPU spread ± "
        f"{r['idle_cpu_power_std_w']:.2f} W) over a {r['idle_window_s']:.1f} s quiet window."
        for mode, r in sorted(seen.items())
    ]
    return out or ["No idle baseline was recorded: active energy is not available."]


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


def read_model_metrics(folder: Path, backends: list[str]) -> dict[str, dict[str, dict]]:
    """{backend: {stage: metrics}} from <folder>/<backend>/<stage>.json, for the frameworks
    of this experiment only (a framework dropped from train.backends leaves its old files)."""
    return {
        sub.name: {f.stem: artifacts.read_json(f) for f in sorted(sub.glob("*.json"))}
        for sub in sorted(folder.iterdir())
        if sub.is_dir() and sub.name in backends
    }


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
        Table("Models: speed and size", models, col.SPEED_COLS),
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


def skipped_notes(per_backend: dict, stage_metrics: dict) -> list[str]:
    """Why each model that was not made is missing from the tables."""
    return [n for m in per_backend.values() for n in not_made({**stage_metrics, **m})]


def energy_intro(models: list[dict], total_inferences: int) -> str:
    """What the energy table's totals assume, and the data stages' energy (the same for every
    model, so one figure here rather than a column)."""
    text = (
        f"Gross energy, and active energy (above the idle baseline). Total = to obtain + "
        f"{total_inferences:,} inferences (report.total_inferences)."
    )
    if models:
        data = f"{si(models[0].get('data_j'), 'J')} / {si(models[0].get('data_active_j'), 'J')}"
        text += f" The data stages, shared by every model and in no figure here: {data}."
    return text


def pictures(models: list[dict], stages: list[dict], args) -> list[Image]:
    """The two PNGs, written to --png and --stages-png; paths relative to the Markdown."""
    out = []
    for path, alt, png in (
        (args.png, "accuracy against energy", accuracy_energy_png(models)),
        (args.stages_png, "energy per stage by component", energy_stages_png(stages)),
    ):
        artifacts.write_bytes(path, png)
        out.append(Image(alt, png, os.path.relpath(path, Path(args.md).parent)))
    return out


def main(argv: list[str] | None = None) -> None:
    p = stage_parser("report", __doc__)
    p.add_argument(
        "--stage-metrics", action="append", required=True, help="metrics JSON of a stage (repeat)"
    )
    p.add_argument(
        "--model-metrics", required=True, help="folder of <backend>/<stage>.json (per framework)"
    )
    p.add_argument("--md", default="reports/report.md")
    p.add_argument("--html", default="reports/report.html")
    p.add_argument("--png", default="reports/accuracy_energy.png")
    p.add_argument("--stages-png", required=True, help="energy per stage by component (PNG)")
    p.add_argument("--headline", required=True, help="headline JSON (the DVC metrics)")
    p.add_argument("--models-csv", required=True, help="one row per model, for dvc plots")
    args = p.parse_args(argv)
    params = load(args)
    cfg = params.report
    with stage_run("report", params, args.metrics) as run:
        stage_metrics = {Path(m).stem: artifacts.read_json(m) for m in args.stage_metrics}
        per_backend = read_model_metrics(Path(args.model_metrics), list(params.train.backends))
        tables = build_tables(per_backend, stage_metrics, cfg.total_inferences)
        models, stages = tables[0].rows, tables[-1].rows
        found = findings(models, stages)
        notes = [*skipped_notes(per_backend, stage_metrics), *notes_for(stages)]
        page = Page(cfg.title, tables, notes, pictures(models, stages, args), found)
        artifacts.write_text(args.md, markdown(page))
        artifacts.write_text(args.html, html_page(page))
        run.log_artifact(args.stages_png)
        totals = experiment_totals(stages)
        top = headline(models, totals)
        artifacts.write_json(args.headline, top)
        artifacts.write_text(args.models_csv, models_csv(models))
        for path in (args.md, args.html, args.png, args.headline, args.models_csv):
            run.log_artifact(path)
        # the headline in the record too: the ledger puts it on the parent run (report/headline/...)
        run.log_metrics(
            {"models": len(models), "stages": len(stages), "upstream": totals, "headline": top}
        )


if __name__ == "__main__":
    main_of(main)
