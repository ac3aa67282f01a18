"""report: Markdown and HTML report of one experiment (what it found first: the best model
per criterion and what each technique bought; then every model's quality, speed and energy
with its flags, the efficiency targets, distillation charged with the teacher's energy,
optimization before and after, every stage's energy), a PNG of accuracy against energy and
one of the energy per stage; all logged to MLflow as artifacts."""

from __future__ import annotations

import os
from pathlib import Path

from greenpipe import artifacts
from greenpipe.entry import main_of, stage, stage_parser
from greenpipe.report.findings import findings
from greenpipe.report.headline import headline, models_csv
from greenpipe.report.notes import notes_for, skipped_notes
from greenpipe.report.page import build_tables, experiment_totals
from greenpipe.report.plot import accuracy_energy_png, energy_stages_png
from greenpipe.report.render import Image, Page, html_page, markdown

PATHS = {
    "--model-metrics": "folder of <backend>/<stage>.json (per framework)",
    "--md": "the report (Markdown)",
    "--html": "the report (HTML)",
    "--png": "accuracy against energy (PNG)",
    "--stages-png": "energy per stage by component (PNG)",
    "--headline": "headline JSON (the DVC metrics)",
    "--models-csv": "one row per model, for dvc plots",
}


def read_model_metrics(folder: Path, backends: list[str]) -> dict[str, dict[str, dict]]:
    """{backend: {stage: metrics}} from <folder>/<backend>/<stage>.json, for the frameworks
    of this experiment only (a framework dropped from train.backends leaves its old files)."""
    return {
        sub.name: {f.stem: artifacts.read_json(f) for f in sorted(sub.glob("*.json"))}
        for sub in sorted(folder.iterdir())
        if sub.is_dir() and sub.name in backends
    }


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
    p = stage_parser(__file__, __doc__, PATHS)
    p.add_argument(
        "--stage-metrics", action="append", required=True, help="metrics JSON of a stage (repeat)"
    )
    args = p.parse_args(argv)
    with stage(args) as (run, params):
        cfg = params.report
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
