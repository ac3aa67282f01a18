"""The experiment's energy ledger on its parent run: spent, inherited and the totals.

Every stage of an experiment either ran its code under this parent (a child run whose energy
this run *spent*) or ran none: up to date in dvc.lock, or restored by DVC from its cache or
run-cache. A stage that ran no code gets a child run tagged `greenpipe.inherited=true` whose
figures are those recorded by the run that produced its outputs (named in its metrics file's
`energy.record`), under `inherited_*` keys, so that the spent total is exactly the sum of
the children's `energy_j`. The parent carries both totals (`spent/...`, `inherited/...`,
per component), and every stage's recorded metrics as `<stage>/<backend>/<key path>`.

Figures measured in different CodeCarbon modes are never added: such a total is refused
and the parent's `greenpipe.totals_refused` tag says why.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from greenpipe.artifacts import read_json
from greenpipe.tracking import provenance as prov
from greenpipe.tracking import runs

TAG_INHERITED = "greenpipe.inherited"
TAG_MODE = "energy.tracking_mode"
# child-run metric keys that add up across stages (J, gCO2e, s)
TOTAL_KEYS = (
    "energy_j",
    "cpu_energy_j",
    "gpu_energy_j",
    "ram_energy_j",
    "active_energy_j",
    "active_cpu_energy_j",
    "active_gpu_energy_j",
    "active_ram_energy_j",
    "emissions_g",
    "duration_s",
)


def numeric(flat: dict[str, Any]) -> dict[str, float]:
    return {
        k: float(v)
        for k, v in flat.items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    }


def figures(energy: dict[str, Any]) -> dict[str, float]:
    """A stage's energy block as child-run metrics: its top-level numbers, with component
    energies named `<part>_energy_j` (cpu_j -> cpu_energy_j, active_cpu_j ->
    active_cpu_energy_j) and idle power as `idle_<key>`."""
    out = {}
    for k, v in numeric(energy).items():
        if k.endswith("_j") and k not in ("energy_j", "active_energy_j"):
            k = k.replace("_j", "_energy_j")
        out[k] = v
    idle = energy.get("idle")
    if isinstance(idle, dict):
        out.update({f"idle_{k}": v for k, v in numeric(idle).items()})
    return out


def parent_keys(stage: str, block: dict[str, Any]) -> dict[str, float]:
    """A stage's metrics block as the parent run's `<stage>/<backend>/<key path>` metrics
    (MLflow keys cannot hold "@": train@torch -> train/torch)."""
    prefix = stage.replace("@", "/")
    flat = numeric(prov.flatten(block, ""))
    # MLflow keys take alphanumerics, _ - . space : / only (a task may be named "infer_x#0")
    return {
        re.sub(r"[^\w\-. :/]", "_", f"{prefix}/{k.replace('.', '/')}"): v for k, v in flat.items()
    }


def energy_of(blocks: list[dict]) -> dict[str, Any] | None:
    """The energy block among a stage's metrics files (the first that has one)."""
    return next((b["energy"] for b in blocks if isinstance(b.get("energy"), dict)), None)


def workspace_blocks(root: Path, stages: list[str]) -> dict[str, list[dict]]:
    """{stage: [its metrics files' contents]} as they are in the workspace now."""
    out = {}
    for stage in stages:
        blocks = []
        for path in prov.stage_metric_files(root, stage):
            try:
                blocks.append(read_json(path))
            except (OSError, ValueError):
                continue
        out[stage] = blocks
    return out


def _sum(rows: list[dict[str, float]]) -> dict[str, float]:
    return {k: sum(r.get(k, 0.0) for r in rows) for k in TOTAL_KEYS}


def _source(energy: dict[str, Any]) -> str:
    """The record that an energy block came from (its `record`: the record id, or the run id
    of files written before stages wrote run records), or "unknown"."""
    rec = energy.get("record") or {}
    return str(rec.get("record_id") or rec.get("run_id") or "unknown")


def _source_run(store, energy: dict[str, Any]) -> str:
    """The MLflow run that logged the block's record (runs.TAG_RECORD), or its id."""
    rec = energy.get("record") or {}
    if not rec.get("record_id"):
        return _source(energy)
    found = runs.runs_of_record(store, rec["record_id"], max_results=1)
    return found[0].info.run_id if found else "unknown"


def _inherit(store, parent: str, stage: str, energy: dict[str, Any], how: str) -> None:
    """A child run for a stage that ran no code, with the figures of the run that made its
    outputs under `inherited_*` keys."""
    tags = {
        runs.TAG_PARENT: parent,
        runs.TAG_ROLE: "stage",
        "greenpipe.stage": stage,
        TAG_INHERITED: "true",
        "greenpipe.how": how,
        "greenpipe.inherited_record": _source(energy),
        "greenpipe.inherited_from": _source_run(store, energy),
        TAG_MODE: str(energy.get("tracking_mode", "unknown")),
        "mlflow.note.content": f"{how}: no code ran and no energy was spent by this run. "
        "The inherited_* figures are those recorded by the run that produced the outputs.",
        **{f"energy.source.{k}": v for k, v in (energy.get("source") or {}).items()},
    }
    run = store.client.create_run(store.exp_id, run_name=stage, tags=tags)
    metrics = {f"inherited_{k}": v for k, v in figures(energy).items()}
    runs.log_metrics(store.client, run.info.run_id, metrics)
    store.client.set_terminated(run.info.run_id, "FINISHED")


def _inherited_record(child) -> str | None:
    tags = child.data.tags
    return tags.get("greenpipe.inherited_record") or tags.get("greenpipe.inherited_from")


def _group_total(rows: list[tuple[str, dict[str, float]]], label: str) -> tuple[dict, str]:
    """Sum of rows (mode, figures) if they share one mode; else ({}, the reason)."""
    modes = sorted({m for m, _ in rows})
    if len(modes) > 1:
        return {}, f"{label} figures mix CodeCarbon modes {modes}: not added"
    return _sum([f for _, f in rows]), ""


def reconcile(
    store, parent: str, blocks: dict[str, list[dict]], how: dict[str, str] | None = None
) -> dict[str, dict[str, float]]:
    """Bring the parent's ledger up to date: an inherited child (and the recorded metrics on
    the parent) for every stage in `blocks` that has no spent child yet, inherited children
    of stages that have since run removed, and the totals. Returns {"spent": ..,
    "inherited": ..}; a group whose modes differ is left out (and tagged on the parent)."""
    how = how or {}
    client = store.client
    children = client.search_runs(
        [store.exp_id], f"tags.`{runs.TAG_PARENT}` = '{parent}'", max_results=1000
    )
    spent = [c for c in children if c.data.tags.get(TAG_INHERITED) != "true"]
    inherited = {c.info.run_name: c for c in children if c.data.tags.get(TAG_INHERITED) == "true"}
    spent_names = {c.info.run_name for c in spent}
    for name, child in inherited.items():
        if name in spent_names:  # it ran under this parent after it was first inherited
            client.delete_run(child.info.run_id)
    inherited_rows, names = [], []
    for stage, stage_blocks in blocks.items():
        energy = energy_of(stage_blocks)
        if stage in spent_names or energy is None:
            continue
        old = inherited.get(stage)
        if old is not None and _inherited_record(old) != _source(energy):
            client.delete_run(old.info.run_id)  # DVC has since restored another run's outputs
            old = None
        if old is None:
            _inherit(store, parent, stage, energy, how.get(stage, "not run by this invocation"))
            for block in stage_blocks:  # once per inherited child, not at every reconcile
                runs.log_metrics(client, parent, parent_keys(stage, block))
        elif stage in how and old.data.tags.get("greenpipe.how") != how[stage]:
            client.set_tag(old.info.run_id, "greenpipe.how", how[stage])
        inherited_rows.append((str(energy.get("tracking_mode", "unknown")), figures(energy)))
        names.append(stage)
    spent_rows = [
        (c.data.tags.get(TAG_MODE, "unknown"), c.data.metrics)
        for c in spent
        if "energy_j" in c.data.metrics
    ]
    totals, reasons, metrics = {}, [], {}
    for label, rows in (("spent", spent_rows), ("inherited", inherited_rows)):
        total, why = _group_total(rows, label)
        if why:
            reasons.append(why)
            continue
        totals[label] = total
        metrics.update({f"{label}/{k}": v for k, v in total.items()})
        metrics[f"{label}/stages"] = float(len(rows))
    runs.log_metrics(client, parent, metrics)
    tags = {
        "greenpipe.spent_stages": ",".join(sorted(spent_names)) or "-",
        "greenpipe.inherited_stages": ",".join(sorted(names)) or "-",
        "greenpipe.totals_refused": "; ".join(reasons) or "-",
    }
    runs.set_tags(client, parent, tags)
    return totals
