"""Markdown and HTML renderings of the report (the HTML embeds its plot, so it is one file)."""

from __future__ import annotations

import base64
import html
from typing import Any

MODEL_COLS = [
    ("model", "model", "{}"),
    ("backend", "backend", "{}"),
    ("accuracy", "accuracy", "{:.4f}"),
    ("macro_f1", "macro-F1", "{:.4f}"),
    ("params", "params", "{:,}"),
    ("size_kb", "size (KiB)", "{:.1f}"),
    ("latency_p50_ms", "p50 (ms)", "{:.3f}"),
    ("latency_p95_ms", "p95 (ms)", "{:.3f}"),
    ("throughput_sps", "throughput (/s)", "{:,.0f}"),
    ("energy_per_1k_kwh", "kWh / 1k inferences", "{:.3e}"),
    ("train_kwh", "own training kWh", "{:.3e}"),
    ("obtain_kwh", "kWh to obtain", "{:.3e}"),
    ("total_kwh", "total kWh", "{:.3e}"),
]
STAGE_COLS = [
    ("stage", "stage", "{}"),
    ("energy_kwh", "energy (kWh)", "{:.3e}"),
    ("cpu_kwh", "CPU (kWh)", "{:.3e}"),
    ("gpu_kwh", "GPU (kWh)", "{:.3e}"),
    ("ram_kwh", "RAM (kWh)", "{:.3e}"),
    ("emissions_kg", "kgCO2e", "{:.3e}"),
    ("duration_s", "duration (s)", "{:.1f}"),
    ("source", "how measured", "{}"),
]


def _fmt(value: Any, fmt: str) -> str:
    if value is None:
        return "n/a"
    try:
        return fmt.format(value)
    except (ValueError, TypeError):
        return str(value)


def _md_table(rows: list[dict], cols: list[tuple]) -> str:
    head = "| " + " | ".join(c[1] for c in cols) + " |"
    sep = "|" + "|".join("---" for _ in cols) + "|"
    body = ["| " + " | ".join(_fmt(r.get(k), f) for k, _, f in cols) + " |" for r in rows]
    return "\n".join([head, sep, *body])


def _html_table(rows: list[dict], cols: list[tuple]) -> str:
    head = "".join(f"<th>{html.escape(c[1])}</th>" for c in cols)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_fmt(r.get(k), f))}</td>" for k, _, f in cols) + "</tr>"
        for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def markdown(
    title: str, models: list[dict], stages: list[dict], notes: list[str], plot_name: str
) -> str:
    parts = [
        f"# {title}",
        "",
        "## Models (test split)",
        "",
        _md_table(models, MODEL_COLS),
        "",
        "## Energy per stage",
        "",
        _md_table(stages, STAGE_COLS),
        "",
        f"![accuracy against energy]({plot_name})",
        "",
        "## Notes",
        "",
    ]
    parts += [f"- {n}" for n in notes]
    return "\n".join(parts) + "\n"


def html_page(
    title: str, models: list[dict], stages: list[dict], notes: list[str], png: bytes
) -> str:
    img = base64.b64encode(png).decode()
    style = (
        "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}"
        "th{background:#eee}td:first-child{text-align:left}"
    )
    notes_html = "".join(f"<li>{html.escape(n)}</li>" for n in notes)
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
        f"</title><style>{style}</style></head><body><h1>{html.escape(title)}</h1>"
        f"<h2>Models (test split)</h2>{_html_table(models, MODEL_COLS)}"
        f"<h2>Energy per stage</h2>{_html_table(stages, STAGE_COLS)}"
        f"<h2>Accuracy against energy</h2><img alt='accuracy against energy' "
        f"src='data:image/png;base64,{img}'/><h2>Notes</h2><ul>{notes_html}</ul>"
        "</body></html>\n"
    )
