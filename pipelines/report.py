"""report: Markdown and HTML report with every model and every stage's energy, plus a PNG plot
of accuracy against energy; all logged to MLflow as artifacts."""

from __future__ import annotations

import os
from pathlib import Path

from greenpipe import artifacts
from greenpipe.entry import load, main_of, stage_parser
from greenpipe.report.plot import accuracy_energy_png
from greenpipe.report.render import html_page, markdown
from greenpipe.report.tables import model_rows, stage_rows
from greenpipe.tracking.stage import stage_run


def notes_for(stages: list[dict]) -> list[str]:
    sources = sorted({r["source"] for r in stages if r["source"]})
    notes = [f"Energy source: {s}." for s in sources]
    notes.append(
        "'measured' = read from a hardware energy counter (RAPL, NVML); 'estimated' = "
        "CodeCarbon's power model (CPU TDP x load, RAM size). Figures are as reported, "
        "not smoothed."
    )
    notes.append(
        "kWh to obtain = own training energy, plus the teacher's for distilled "
        "students, plus quantization for int8 models. The report stage's own energy "
        "is in metrics/report.json, not in this table."
    )
    return notes


def read_model_metrics(folder: Path) -> dict[str, dict[str, dict]]:
    """{backend: {stage: metrics}} from <folder>/<backend>/<stage>.json."""
    return {
        sub.name: {f.stem: artifacts.read_json(f) for f in sorted(sub.glob("*.json"))}
        for sub in sorted(folder.iterdir())
        if sub.is_dir()
    }


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
    args = p.parse_args(argv)
    params = load(args)
    with stage_run("report", params, args.metrics) as run:
        metrics = {Path(m).stem: artifacts.read_json(m) for m in args.stage_metrics}
        per_backend = read_model_metrics(Path(args.model_metrics))
        models = sorted(
            (
                row
                for m in per_backend.values()
                for row in model_rows(m, params.report.total_inferences)
            ),
            key=lambda r: (r["model"], r["backend"]),
        )
        for backend, stage_metrics in per_backend.items():
            metrics.update({f"{st}@{backend}": m for st, m in stage_metrics.items()})
        stages = stage_rows(metrics)
        notes = notes_for(stages)
        png = accuracy_energy_png(models)
        artifacts.write_bytes(args.png, png)
        rel_png = os.path.relpath(args.png, Path(args.md).parent)
        artifacts.write_text(
            args.md, markdown(params.report.title, models, stages, notes, str(rel_png))
        )
        artifacts.write_text(args.html, html_page(params.report.title, models, stages, notes, png))
        for path in (args.md, args.html, args.png):
            run.log_artifact(path)
        run.log_metrics({"models": len(models), "stages": len(stages)})


if __name__ == "__main__":
    main_of(main)
