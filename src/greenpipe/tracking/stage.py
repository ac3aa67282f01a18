"""`stage_run`: the one context that wraps every stage.

It is three parts stacked with an ExitStack, each usable alone: the MLflow child run nested
under the experiment's parent (`child_run`: FAILED with the one-line error if the stage
raises), the energy span (`energy_span`: one CodeCarbon tracker around the whole stage; the
stage's `meter.task(...)` windows are parts of it), and the metrics writer (metrics/<stage>.json
for DVC, written only when the stage succeeds). On success the child run gets the energy
figures (gross and active, per component, with their sources), the stage's metrics and
artifacts, and the parent's ledger is brought up to date (greenpipe.tracking.ledger).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from greenpipe import artifacts
from greenpipe.config import Params
from greenpipe.errors import one_line
from greenpipe.tracking import dvc_hashes, idle, ledger, runs
from greenpipe.tracking import provenance as prov
from greenpipe.tracking.energy import EnergyMeter, EnergyReading
from greenpipe.tracking.idle import IdleBaseline

TRACKING_ENV = "GREENPIPE_TRACKING"


class NullMeter:
    """Stands in for EnergyMeter when tracking is off: its tasks measure nothing."""

    tracking_mode = "off"

    @contextlib.contextmanager
    def task(self, name: str) -> Iterator[dict]:
        yield {}


def span_figures(reading: EnergyReading | None, base: IdleBaseline | None) -> dict[str, Any]:
    """A window's gross energy (J) per component, its active energy (J, above the idle
    baseline), emissions (gCO2e) and duration (s); None for what was not measured."""
    keys = ("energy_j", "cpu_j", "gpu_j", "ram_j", "emissions_g", "duration_s")
    if reading is None:
        return {**dict.fromkeys(keys), "active_energy_j": None}
    out: dict[str, Any] = {k: getattr(reading, k) for k in keys}
    out["active_energy_j"] = base.active(reading)["active_energy_j"] if base else None
    return out


@dataclass
class StageRun:
    """Handed to the stage body: record metrics and artifacts, measure sub-spans of energy."""

    stage: str
    run_id: str
    parent_id: str
    meter: EnergyMeter
    root: Path
    idle: IdleBaseline | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    artifacts: list[Path] = field(default_factory=list)

    def log_metrics(self, metrics: dict[str, Any]) -> None:
        """Stage metrics (nested dicts allowed); logged as `<stage>/<key>` at exit."""
        self.metrics.update(metrics)

    def log_artifact(self, path: str | Path) -> None:
        self.artifacts.append(Path(path))

    def active_j(self, reading: EnergyReading | None) -> float | None:
        """Active energy (J above the idle baseline) of a reading, or None."""
        if reading is None or self.idle is None:
            return None
        return self.idle.active(reading)["active_energy_j"]

    def figures(self, box: dict[str, EnergyReading]) -> dict[str, Any]:
        """span_figures of a `meter.task` window (what the model it made cost)."""
        return span_figures(box.get("reading"), self.idle)


def energy_block(
    meter: EnergyMeter, reading: EnergyReading | None, base: IdleBaseline | None, record: dict
) -> dict[str, Any]:
    """The energy block of metrics/<stage>.json: the whole span (gross per component, mean
    powers, emissions), its CodeCarbon mode and country, the active energy above the idle
    baseline and that baseline's figures, each task window and the time outside them, the
    sources and the runs that recorded it."""
    head = {"tracking_mode": meter.tracking_mode, "country_iso_code": meter.country_iso_code}
    if reading is None:
        return {"measured": False, **head, "source": meter.sources(), "record": record}
    block: dict[str, Any] = {**reading.as_metrics(), **head}
    if base is not None:
        block.update(base.active(reading))
        block["idle"] = base.as_metrics()
    block["tasks"] = {n: span_figures(r, base) for n, r in meter.tasks.items()}
    block["outside_tasks"] = span_figures(meter.outside_tasks(reading), base)
    block["source"] = meter.sources()
    block["record"] = record
    return block


def peak_rss_mb() -> float:
    """Peak resident memory of this stage's process so far (MiB), from getrusage."""
    import resource
    import sys

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB


@dataclass
class Child:
    """The stage's MLflow run: its id, its parent's, and the energy block once known."""

    store: runs.Store
    run_id: str
    parent_id: str
    owns_parent: bool
    backends: list[str]
    energy: dict[str, Any] = field(default_factory=dict)


def _create_child(store: runs.Store, stage: str, params: Params, root: Path) -> Child:
    flat = prov.flatten(params.model_dump(mode="json"))
    parent = runs.find_or_create_parent(store, flat)
    tags = {
        runs.TAG_PARENT: parent,
        runs.TAG_ROLE: "stage",
        "greenpipe.stage": stage,
        ledger.TAG_MODE: params.tracking.codecarbon_mode,
        "mlflow.source.git.commit": prov.git_commit(root),
        **runs.process_tags(),
    }
    tags.update({f"lib.{k}": v for k, v in prov.library_versions().items()})
    tags.update({f"hw.{k}": str(v) for k, v in prov.hardware().items()})
    tags.update(dvc_hashes.tags(root, stage, "deps"))
    child = store.client.create_run(store.exp_id, run_name=stage, tags=tags)
    keys = prov.stage_param_keys(root, stage)
    mine = {k: v for k, v in flat.items() if any(k == p or k.startswith(p + ".") for p in keys)}
    runs.log_params(store.client, child.info.run_id, mine)
    owns = not os.environ.get(runs.PARENT_ENV)
    return Child(store, child.info.run_id, parent, owns, list(params.train.backends))


@contextlib.contextmanager
def child_run(store: runs.Store, stage: str, params: Params, root: Path) -> Iterator[Child]:
    """The stage's MLflow run; if the body raises: its energy so far, the one-line error,
    status FAILED (and the parent's, when this stage opened it), and the error goes on."""
    child = _create_child(store, stage, params, root)
    try:
        yield child
    except BaseException as exc:
        client = store.client
        with contextlib.suppress(Exception):
            runs.log_metrics(client, child.run_id, ledger.figures(child.energy))
            client.set_tag(child.run_id, "greenpipe.error", one_line(exc)[:5000])
        client.set_terminated(child.run_id, "FAILED")
        if child.owns_parent:
            client.set_terminated(child.parent_id, "FAILED")
        raise


@contextlib.contextmanager
def energy_span(meter: EnergyMeter, box: dict) -> Iterator[dict[str, EnergyReading | None]]:
    """One CodeCarbon span around the block; box["reading"] holds it after (None if
    CodeCarbon failed), whether the block succeeded or not."""
    meter.start()
    try:
        yield box
    finally:
        box["reading"] = meter.stop()


def _finish(child: Child, run: StageRun) -> None:
    """Log the figures, metrics, tags and artifacts; close the run; update the ledger."""
    client, energy = child.store.client, child.energy
    prefixed = ledger.parent_keys(run.stage, {**run.metrics, "energy": energy})
    runs.log_metrics(client, child.run_id, {**ledger.figures(energy), **prefixed})
    runs.log_metrics(client, child.parent_id, prefixed)
    source_tags = {f"energy.source.{comp}": src for comp, src in energy["source"].items()}
    hashes = dvc_hashes.tags(run.root, run.stage, "outs")
    runs.set_tags(client, child.run_id, {**source_tags, **hashes})
    runs.set_tags(client, child.parent_id, source_tags)
    for path in run.artifacts:
        if path.is_file():
            client.log_artifact(child.run_id, str(path))
    client.set_terminated(child.run_id, "FINISHED")
    stages = [s for s in prov.lock_stages(run.root, child.backends) if s != run.stage]
    ledger.reconcile(child.store, child.parent_id, ledger.workspace_blocks(run.root, stages))
    if child.owns_parent:
        client.set_terminated(child.parent_id, "FINISHED")


def _write_metrics(run: StageRun, metrics_path: str | Path | None, energy: dict) -> None:
    """Add the peak memory to the stage's metrics; write them with the energy block."""
    run.metrics["resources"] = {"peak_rss_mb": peak_rss_mb()}
    if metrics_path is not None:
        artifacts.write_json(metrics_path, {**run.metrics, "energy": energy})


@contextlib.contextmanager
def stage_run(
    stage: str, params: Params, metrics_path: str | Path | None = None, root: Path | None = None
) -> Iterator[StageRun]:
    """Wrap one stage: nested MLflow run + CodeCarbon + metrics JSON (see module docstring).

    With GREENPIPE_TRACKING=off (benchmarks/overhead.py uses it for its bare baseline) the
    stage runs with neither MLflow nor CodeCarbon: only the metrics JSON is written, without
    energy figures.
    """
    root = (root or Path.cwd()).resolve()
    if os.environ.get(TRACKING_ENV, "on") == "off":
        run = StageRun(stage, "", "", NullMeter(), root)  # type: ignore[arg-type]
        yield run
        _write_metrics(run, metrics_path, {"measured": False, "source": {}})
        return
    tr = params.tracking
    store = runs.open_store(tr, params.experiment, root)
    base = idle.baseline_for(tr)
    meter = EnergyMeter(tr.country_iso_code, tr.measure_power_secs, stage, tr.codecarbon_mode)
    with contextlib.ExitStack() as stack:
        child = stack.enter_context(child_run(store, stage, params, root))
        record = {"run_id": child.run_id, "parent_run_id": child.parent_id}
        run = StageRun(stage, child.run_id, child.parent_id, meter, root, base)
        box: dict[str, EnergyReading | None] = {}
        try:
            with energy_span(meter, box):
                yield run
        finally:
            child.energy = energy_block(meter, box.get("reading"), base, record)
        _write_metrics(run, metrics_path, child.energy)
        _finish(child, run)
