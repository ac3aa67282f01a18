"""Short summaries of one experiment run, from the files it left: the stages' energy (the
Prefect artifact of a flow run) and each model's accuracy and energy (the table printed at
the end of `greenpipe run`). Pure text; the callers decide where it goes."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from greenpipe.report.units import si
from greenpipe.tracking import ledger

STATE_WORDS = {"Cached": "up to date", "Restored": "restored (run-cache)"}


def stage_rows(blocks: dict[str, list[dict]], outcome: dict[str, str]) -> list[dict[str, Any]]:
    """One row per stage of `outcome` ({stage: Prefect state name}): how it came to be and its
    recorded energy block's gross and active J, gCO2e and seconds (None when unknown)."""
    rows = []
    for stage, state in outcome.items():
        energy = ledger.energy_of(blocks.get(stage, [])) or {}
        rows.append(
            {
                "stage": stage,
                "how": STATE_WORDS.get(state, "ran" if state == "Completed" else state.lower()),
                "energy_j": energy.get("energy_j"),
                "active_energy_j": energy.get("active_energy_j"),
                "emissions_g": energy.get("emissions_g"),
                "duration_s": energy.get("duration_s"),
            }
        )
    return rows


def _md(head: list[str], rows: Iterable[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def stage_markdown(rows: list[dict[str, Any]], parent_url: str, parent_id: str) -> str:
    """The flow run's artifact: its stages' energy table and the MLflow parent run."""
    body = [
        [
            r["stage"],
            r["how"],
            si(r["energy_j"], "J"),
            si(r["active_energy_j"], "J"),
            si(r["emissions_g"], "gCO2e"),
            si(r["duration_s"], "s"),
        ]
        for r in rows
    ]
    known = [r["energy_j"] for r in rows if r["energy_j"] is not None]
    total = si(sum(known), "J") if known else "n/a"
    # the headline names the span it covers: a stage without a record adds nothing to it
    span = (
        f"{len(rows)} stages" if len(known) == len(rows) else f"{len(known)} of {len(rows)} stages"
    )
    head = ["stage", "how", "energy (gross)", "active", "emissions", "duration"]
    return "\n\n".join(
        [
            f"# greenpipe experiment: {total} over {span}",
            f"MLflow parent run: [{parent_id}]({parent_url})",
            _md(head, body),
            "Gross = what CodeCarbon measured or estimated over the stage's whole span; "
            "active = gross minus the idle power x duration. A stage that was up to date or "
            "restored ran no code: its figures are those of the run that produced its files.",
        ]
    )


def variant_markdown(sweep_id: str, rows: list[dict[str, Any]]) -> str:
    """A sweep's artifact: each variant (`variant`, `ok`, `seconds`, `reason`, `url` of its
    MLflow parent run)."""
    body = [
        [
            f"[{r['variant']}]({r['url']})",
            "ok" if r["ok"] else "FAILED",
            si(r.get("seconds"), "s"),
            " ".join(str(r.get("reason") or "").split())[:200],
        ]
        for r in rows
    ]
    done = sum(1 for r in rows if r["ok"])
    return "\n\n".join(
        [
            f"# greenpipe sweep {sweep_id}: {done}/{len(rows)} variants ok",
            _md(["variant (MLflow parent run)", "status", "wall time", "reason"], body),
            "Compare them: `dvc exp show --only-changed`, the MLflow runs table (tag "
            f"greenpipe.sweep = '{sweep_id}') or reports/sweeps/{sweep_id}/.",
        ]
    )


def read_models_csv(path: Path) -> list[dict[str, str]]:
    """The rows of the report's models.csv ([] if it is not there)."""
    if not path.is_file():
        return []
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def _num(text: str | None) -> float | None:
    return float(text) if text not in (None, "") else None


def model_table(rows: list[dict[str, str]]) -> str:
    """A plain-text table for the terminal: each model's accuracy and energy."""
    head = ["model", "accuracy", "J to obtain", "per 1k inferences"]
    body = [
        [
            r["model"],
            f"{_num(r['accuracy']):.4f}" if _num(r["accuracy"]) is not None else "n/a",
            si(_num(r["obtain_j"]), "J"),
            si(_num(r["energy_per_1k_j"]), "J"),
        ]
        for r in rows
    ]
    widths = [max(len(x) for x in col) for col in zip(head, *body, strict=True)]

    def line(cells: list[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = [c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True)]
        return "  ".join([first, *rest])

    return "\n".join([line(head), line(["-" * w for w in widths]), *map(line, body)])
