"""The per-class table of the report: each class by name, its test samples, every model's
recall on it and what the KD student mistakes it for most, from the confusion matrices and
class names in metrics/models/<backend>/evaluate.json."""

from __future__ import annotations

from typing import Any

from greenpipe.report.render import Column
from greenpipe.report.tables import LINEAGE

CONFUSED_BY = "student_kd"  # the model whose most frequent mistake per class is shown


def _models(evaluate: dict) -> list[str]:
    """The models of an evaluate record that have a confusion matrix, in lineage order."""
    found = [m for m, r in (evaluate.get("models") or {}).items() if "confusion" in r]
    return sorted(found, key=lambda m: (list(LINEAGE).index(m) if m in LINEAGE else 99, m))


def _mistake(row: list[int], own: int, names: list[str]) -> str:
    """The class a matrix row's samples were predicted as most often, other than their own:
    "dog (3)", or "" when none was mistaken."""
    count, other = max((n, j) for j, n in enumerate(row) if j != own) if len(row) > 1 else (0, 0)
    return f"{names[other]} ({count})" if count else ""


def class_rows(per_backend: dict[str, dict[str, dict]]) -> list[dict[str, Any]]:
    """One row per (class, backend): class name, test samples, `recall:<model>` per model,
    and `mistaken_for` (the KD student's most frequent wrong class). Records written before
    evaluate kept class names give no rows."""
    rows = []
    for backend, stages in per_backend.items():
        ev = stages.get("evaluate") or {}
        names, models = ev.get("classes"), _models(ev)
        if not names or not models:
            continue
        matrices = {m: ev["models"][m]["confusion"] for m in models}
        for i, name in enumerate(names):
            support = sum(matrices[models[0]][i])
            row: dict[str, Any] = {"class": name, "backend": backend, "samples": support}
            for m in models:
                hits = matrices[m][i][i]
                row[f"recall:{m}"] = hits / support if support else None
            if CONFUSED_BY in matrices:
                row["mistaken_for"] = _mistake(matrices[CONFUSED_BY][i], i, names)
            rows.append(row)
    return rows


def class_cols(rows: list[dict[str, Any]]) -> list[Column]:
    """class, backend, test samples, one recall column per model in the rows, the mistake."""
    models = list(dict.fromkeys(k[7:] for r in rows for k in r if k.startswith("recall:")))
    # a break opportunity after each "_": long model names wrap in the header, not the page
    recall: list[Column] = [(f"recall:{m}", m.replace("_", "_\u200b"), "{:.3f}") for m in models]
    return [
        ("class", "class", "{}"),
        ("backend", "backend", "{}"),
        ("samples", "test samples", "{:,}"),
        *recall,
        ("mistaken_for", f"{CONFUSED_BY} mistakes it most for", "{}"),
    ]
