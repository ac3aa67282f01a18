"""The cross-run report (`greenpipe report`): a Pareto front of accuracy against energy over
every model of every run, accuracy over seeds, and all points, as HTML, Markdown, PNG and CSV.

Energy axes (`ENERGY`): "train" = J to obtain the model (its training plus everything
upstream: the teacher for distilled students, pruning and quantization for optimized ones);
"inference" = J per 1,000 inferences; "total" = to obtain + `total_inferences` inferences;
"active" = the same total, of active energy (above the idle baseline). The front ranks by
the one chosen; the tables show gross and active side by side.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from greenpipe.report import columns as col
from greenpipe.report.compression import MAX_LOSS_POINTS, TARGET_RATIO, compression_rows
from greenpipe.report.pareto import pareto_front
from greenpipe.report.plot import compression_png, pareto_png, seeds_png
from greenpipe.report.render import Image, Page, Table, html_page, markdown
from greenpipe.report.seeds import accuracy_by_seed, describe, kd_against_scratch, seed_groups
from greenpipe.report.units import RULE

ENERGY = {
    "train": ("obtain_j", "energy to obtain the model (J, training + upstream)"),
    "inference": ("energy_per_1k_j", "energy per 1,000 inferences (J)"),
    "total": ("total_j", "total energy (J): to obtain + report.total_inferences inferences"),
    "active": (
        "total_active_j",
        "total active energy (J above idle): to obtain + report.total_inferences inferences",
    ),
}
SPLIT = {"obtain": ["obtain_j", "obtain_active_j"], "total": ["total_j", "total_active_j"]}
CSV_KEYS = [k for c, _, _ in col.POINT_COLS if c != "accuracy_ci" for k in SPLIT.get(c, [c])] + [
    "accuracy_ci_low",
    "accuracy_ci_high",
    "run_id",
    "config",
]


def with_front(points: list[dict[str, Any]], energy: str) -> list[dict[str, Any]]:
    """The points with `energy_j` (the chosen axis) and `pareto` (non-dominated) set."""
    key = ENERGY[energy][0]
    on = pareto_front([(p.get("accuracy"), p.get(key)) for p in points])
    return [
        {**p, "energy_j": p.get(key), "pareto": flag} for p, flag in zip(points, on, strict=True)
    ]


def points_csv(points: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=["energy_j", *CSV_KEYS], extrasaction="ignore")
    writer.writeheader()
    writer.writerows(points)
    return buf.getvalue()


def _seed_tables(points: list[dict]) -> tuple[list[Table], list[int], list[dict]]:
    """Accuracy over seeds and KD against scratch, for every configuration run with two or
    more seeds; and the seeds and rows of the first (most seeds), which seeds.png shows."""
    groups = seed_groups(points)
    if not groups:
        none = "No configuration was run with two or more seeds."
        return [Table("Accuracy over seeds", [], col.seed_cols([]), intro=none)], [], []
    tables, first = [], None
    for config, seeds in groups:
        rows = accuracy_by_seed(points, seeds)
        first = first or (list(seeds), rows)
        what = describe(config, points, [c for c, _ in groups if c != config])
        name = f"configuration {config}" + (f" ({what})" if what else "")
        runs = ", ".join(f"seed {s}: {_run_name(points, r)}" for s, r in seeds.items())
        tables += [
            Table(f"Accuracy over seeds: {name}", rows, col.seed_cols(list(seeds)), intro=runs),
            Table(
                f"Distilled against from-scratch student over seeds: {name}",
                kd_against_scratch(rows, seeds),
                col.KD_SEED_COLS,
            ),
        ]
    return tables, *first


def _run_name(points: list[dict], run_id: str) -> str:
    return next(p["run_name"] for p in points if p["run_id"] == run_id)


def _tables(points: list[dict], energy: str) -> tuple[list[Table], list[int], list[dict]]:
    seed_tables, seeds, by_seed = _seed_tables(points)
    front = sorted((p for p in points if p["pareto"]), key=lambda p: p["energy_j"])
    front_cols = [*col.POINT_COLS[:6], ("energy_j", ENERGY[energy][1], col.si_of("energy_j"))]
    tables = [
        Table(f"Pareto front (energy = {energy})", front, [*front_cols, ("flag", "flag", "{}")]),
        *seed_tables,
        *_compression_tables(compression_rows(points)),
        Table("All runs and models", points, col.POINT_COLS),
    ]
    return tables, seeds, by_seed


def _compression_tables(rows: list[dict]) -> list[Table]:
    """The compression table, if any run recorded a compress stage."""
    if not rows:
        return []
    intro = (
        f"Each run's compression setting, the ratio it reached and what the teacher trained "
        f"on that data scored and spent, against the uncompressed run (float32, no codec) of "
        f"otherwise the same configuration and seed. Target: ratio >= {TARGET_RATIO:g}x with "
        f"a test accuracy loss <= {MAX_LOSS_POINTS} points. plans/compression.yaml runs the "
        f"settings with their baseline."
    )
    return [
        Table(
            "Dataset compression: downstream accuracy and training energy",
            rows,
            col.COMPRESSION_COLS,
            intro=intro,
        )
    ]


def build(points: list[dict[str, Any]], energy: str, title: str) -> dict[str, str | bytes]:
    """{file name: content} of the report over `points` (from `mlflow_runs.run_points`,
    already through `with_front`)."""
    tables, seeds, by_seed = _tables(points, energy)
    images = {
        "pareto.png": pareto_png(points, ENERGY[energy][1]),
        "seeds.png": seeds_png(by_seed, seeds),
    }
    if compressed := compression_rows(points):
        images["compression.png"] = compression_png(compressed)
    runs = len({p["run_id"] for p in points})
    notes = [
        f"{len(points)} points (run, model, backend) from {runs} finished parent runs.",
        "A point is on the Pareto front if no other point is at least as accurate and at "
        "most as costly, and strictly better in one of the two; such runs are tagged "
        "greenpipe.pareto=true in MLflow.",
        "flag: an optimized model that is not smaller or not faster than its parent is "
        "flagged, not counted as a gain.",
        RULE,
    ]
    alts = {
        "pareto.png": "Pareto front",
        "seeds.png": "accuracy over seeds",
        "compression.png": "accuracy against dataset compression",
    }
    page = Page(title, tables, notes, [Image(alts[k], png, k) for k, png in images.items()])
    return {
        **images,
        "index.html": html_page(page),
        "report.md": markdown(page),
        "points.csv": points_csv(points),
    }
