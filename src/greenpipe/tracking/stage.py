"""`stage_run`: the one context that wraps every stage.

It is three parts stacked with an ExitStack, each usable alone: the run record
(`run_record`: greenpipe.tracking.records; written RUNNING at the start and FINISHED, or
FAILED with the one-line error, at the end), the energy span (`energy_span`: one CodeCarbon
tracker around the whole stage; the stage's `meter.task(...)` windows are parts of it), and
the metrics writer (`metrics_writer`: metrics/<stage>.json for DVC, written only when the
stage succeeds). The stage process never imports MLflow: a process that has it open logs
the record as the stage's child run (greenpipe.tracking.recorder): its energy figures (gross
and active, per component, with their sources), the stage's metrics and artifacts, and the
parent's ledger.
"""

from __future__ import annotations

import contextlib
import functools
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from greenpipe import artifacts
from greenpipe.config import Params
from greenpipe.errors import one_line
from greenpipe.tracking import idle, records, runs
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
    record_id: str
    parent_id: str  # the driver's parent run; "" when the logger finds or makes it
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
    """Peak resident memory of this stage's process so far (MiB): VmHWM on Linux (a stage
    server resets it when it forks the stage, which getrusage would not see), else getrusage."""
    import resource
    import sys

    with contextlib.suppress(OSError, ValueError), open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB


def resources() -> dict[str, float]:
    """The stage's `resources` figures: its peak resident memory, and under `greenpipe run`
    the part of it its stage server had already loaded (libraries shared with the server)."""
    out = {"peak_rss_mb": peak_rss_mb()}
    preloaded = os.environ.get("GREENPIPE_PRELOADED_RSS_MB")
    if preloaded:
        out["preloaded_rss_mb"] = float(preloaded)
    return out


def record_fields(stage: str, params: Params, root: Path, uri: str) -> dict[str, Any]:
    """What the stage's run record holds besides its outcome (greenpipe.tracking.records):
    where it ran, its parent, the tracking store, its params slice and the whole params (for
    a parent the logger may create), and the git commit it ran on."""
    tr = params.tracking
    flat = prov.flatten(params.model_dump(mode="json"))
    keys = prov.stage_param_keys(root, stage)
    mine = {k: v for k, v in flat.items() if any(k == p or k.startswith(p + ".") for p in keys)}
    return {
        "root": str(root),
        "experiment": params.experiment,
        "tracking": {
            "uri": uri,
            "artifact_root": str(root / tr.artifact_dir),
            "codecarbon_mode": tr.codecarbon_mode,
        },
        "process": runs.process_tags(),
        "parent": runs.parent_hint(),
        "params": mine,
        "parent_params": flat,
        "backends": list(params.train.backends),
        "git_commit": prov.git_commit(root),
    }


@contextlib.contextmanager
def energy_span(meter: EnergyMeter, box: dict) -> Iterator[dict[str, EnergyReading | None]]:
    """One CodeCarbon span around the block; box["reading"] holds it after (None if
    CodeCarbon failed), whether the block succeeded or not."""
    meter.start()
    try:
        yield box
    finally:
        box["reading"] = meter.stop()


def _write_metrics(run: StageRun, metrics_path: str | Path | None, energy: dict) -> None:
    """Add the peak memory to the stage's metrics; write them with the energy block."""
    run.metrics["resources"] = resources()
    if metrics_path is not None:
        artifacts.write_json(metrics_path, {**run.metrics, "energy": energy})


def _end(folder: Path, rec: dict, run: StageRun, energy: dict, error: str | None) -> None:
    """The record's outcome, written atomically, and a logger to log it."""
    rec.update(
        status="FAILED" if error else "FINISHED",
        error=error,
        ended_at_unix_s=time.time(),
        energy=energy,
        metrics=run.metrics,
        files=records.keep_files(folder, rec["record_id"], run.artifacts),
    )
    records.write(folder, rec)
    records.ensure_logger(folder)


@contextlib.contextmanager
def run_record(folder: Path, rec: dict, run: StageRun, energy: Callable[[], dict]) -> Iterator:
    """The stage's run record: RUNNING now (and a logger started: under plain dvc repro,
    MLflow loads while the stage works), its outcome and `energy()` block when the block ends,
    FAILED with the one-line error if it raises (the error goes on)."""
    records.write(folder, rec)
    records.ensure_logger(folder)
    try:
        yield rec
    except BaseException as exc:
        _end(folder, rec, run, energy(), one_line(exc))
        raise
    _end(folder, rec, run, energy(), None)


@contextlib.contextmanager
def metrics_writer(run: StageRun, path: str | Path | None, energy: Callable[[], dict]):
    """metrics/<stage>.json (the stage's metrics and `energy()` block) if the block succeeds."""
    yield
    _write_metrics(run, path, energy())


@contextlib.contextmanager
def stage_run(
    stage: str, params: Params, metrics_path: str | Path | None = None, root: Path | None = None
) -> Iterator[StageRun]:
    """Wrap one stage: its run record + CodeCarbon + metrics JSON (see module docstring).

    With GREENPIPE_TRACKING=off (benchmarks/overhead.py uses it for its bare baseline) the
    stage runs with neither a run record nor CodeCarbon: only the metrics JSON is written,
    without energy figures.
    """
    root = (root or Path.cwd()).resolve()
    if os.environ.get(TRACKING_ENV, "on") == "off":
        run = StageRun(stage, "", "", NullMeter(), root)  # type: ignore[arg-type]
        yield run
        _write_metrics(run, metrics_path, {"measured": False, "source": {}})
        return
    tr = params.tracking
    uri = runs.resolve_tracking_uri(tr.mlflow_uri, root)
    runs.check_reachable(uri)  # before any energy is spent: the record would wait forever
    base = idle.of_run(tr.codecarbon_mode) or idle.baseline_for(tr)
    meter = EnergyMeter(tr.country_iso_code, tr.measure_power_secs, stage, tr.codecarbon_mode)
    rec = records.started(records.new_id(), stage, **record_fields(stage, params, root, uri))
    ref = {"record_id": rec["record_id"], "parent_run_id": rec["parent"]["run_id"]}
    run = StageRun(stage, rec["record_id"], rec["parent"]["run_id"] or "", meter, root, base)
    box: dict[str, EnergyReading | None] = {}

    @functools.cache
    def energy() -> dict:  # once the span has closed
        return energy_block(meter, box.get("reading"), base, ref)

    with contextlib.ExitStack() as stack:
        stack.enter_context(run_record(records.folder(root), rec, run, energy))
        stack.enter_context(metrics_writer(run, metrics_path, energy))
        stack.enter_context(energy_span(meter, box))
        yield run
