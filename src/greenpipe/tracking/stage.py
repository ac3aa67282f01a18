"""`stage_run`: the one context that wraps every stage.

It opens an MLflow run nested under the experiment's parent run, runs CodeCarbon around the
stage, and on exit logs energy (total, CPU, GPU, RAM, and how each was obtained), the stage's
metrics and artifacts, and writes metrics/<stage>.json for DVC. If the stage raises, the run
ends FAILED, the tracker is stopped and the error propagates unchanged.
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
from greenpipe.tracking import provenance as prov
from greenpipe.tracking import runs
from greenpipe.tracking.energy import EnergyMeter, EnergyReading

TRACKING_ENV = "GREENPIPE_TRACKING"


class NullMeter:
    """Stands in for EnergyMeter when tracking is off: its tasks measure nothing."""

    @contextlib.contextmanager
    def task(self, name: str) -> Iterator[dict]:
        yield {}


@dataclass
class StageRun:
    """Handed to the stage body: record metrics and artifacts, measure sub-spans of energy."""

    stage: str
    run_id: str
    parent_id: str
    meter: EnergyMeter
    root: Path
    metrics: dict[str, Any] = field(default_factory=dict)
    artifacts: list[Path] = field(default_factory=list)

    def log_metrics(self, metrics: dict[str, Any]) -> None:
        """Stage metrics (nested dicts allowed); logged as `<stage>/<key>` at exit."""
        self.metrics.update(metrics)

    def log_artifact(self, path: str | Path) -> None:
        self.artifacts.append(Path(path))


def energy_metrics(reading: EnergyReading | None, sources: dict[str, str]) -> dict[str, Any]:
    """The energy block of metrics/<stage>.json."""
    if reading is None:
        return {"measured": False, "source": sources}
    return {**reading.as_metrics(), "source": sources}


def peak_rss_mb() -> float:
    """Peak resident memory of this stage's process so far (MiB), from getrusage."""
    import resource
    import sys

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB


def _numeric(flat: dict[str, Any]) -> dict[str, float]:
    return {
        k: float(v)
        for k, v in flat.items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    }


def _start(stage: str, params: Params, root: Path) -> tuple[Any, str, str, str]:
    uri = runs.resolve_tracking_uri(params.tracking.mlflow_uri, root)
    runs.check_reachable(uri)
    client = runs.client_for(uri)
    exp_id = runs.ensure_experiment(client, params.experiment, root / params.tracking.artifact_dir)
    runs.reconcile_stale_runs(client, exp_id)
    flat = prov.flatten(params.model_dump(mode="json"))
    parent = runs.find_or_create_parent(client, exp_id, flat)
    tags = {
        runs.TAG_PARENT: parent,
        runs.TAG_ROLE: "stage",
        "greenpipe.stage": stage,
        "mlflow.source.git.commit": prov.git_commit(root),
        **runs.process_tags(),
    }
    tags.update({f"lib.{k}": v for k, v in prov.library_versions().items()})
    tags.update({f"hw.{k}": str(v) for k, v in prov.hardware().items()})
    tags.update({f"dvc.{k}": v for k, v in prov.stage_hashes(root, stage).items()})
    child = client.create_run(exp_id, run_name=stage, tags=tags)
    keys = prov.stage_param_keys(root, stage)
    mine = {k: v for k, v in flat.items() if any(k == p or k.startswith(p + ".") for p in keys)}
    runs.log_params(client, child.info.run_id, mine)
    return client, exp_id, parent, child.info.run_id


def _write_metrics(run: StageRun, metrics_path: str | Path | None, energy: dict) -> None:
    """Add the peak memory to the stage's metrics; write them with the energy block."""
    run.metrics["resources"] = {"peak_rss_mb": peak_rss_mb()}
    if metrics_path is not None:
        artifacts.write_json(metrics_path, {**run.metrics, "energy": energy})


def parent_keys(stage: str, block: dict[str, Any]) -> dict[str, float]:
    """A stage's metrics block as the parent run's `<stage>/<backend>/<key path>` metrics
    (MLflow keys cannot hold "@": train@torch -> train/torch)."""
    prefix = stage.replace("@", "/")
    flat = _numeric(prov.flatten(block, ""))
    return {f"{prefix}/{k.replace('.', '/')}": v for k, v in flat.items()}


def record_cached(client, exp_id: str, parent: str, stage: str, blocks: list[dict]) -> None:
    """Record a stage that DVC restored from its cache (it ran no code and spent no energy):
    a child run tagged `greenpipe.cached=true`, and on the parent the stage's recorded metrics
    (`blocks`: the stage's metrics files as recorded by the run that produced the outputs),
    so every parent run can be compared whole. The parent's `greenpipe.cached`
    tag lists such stages: their energy was spent by an earlier run, not this one."""
    run = client.create_run(
        exp_id,
        run_name=stage,
        tags={
            runs.TAG_PARENT: parent,
            runs.TAG_ROLE: "stage",
            "greenpipe.stage": stage,
            "greenpipe.cached": "true",
            "mlflow.note.content": "Restored from the DVC cache: no code ran, no energy was "
            "spent. The parent holds the figures recorded when the outputs were produced.",
        },
    )
    client.set_terminated(run.info.run_id, "FINISHED")
    for block in blocks:
        runs.log_metrics(client, parent, parent_keys(stage, block))
    if blocks:
        tag = client.get_run(parent).data.tags.get("greenpipe.cached", "")
        client.set_tag(parent, "greenpipe.cached", ",".join(filter(None, [tag, stage])))


def _finish(client, run: StageRun, reading: EnergyReading | None, owns_parent: bool) -> None:
    sources = run.meter.sources()
    energy = energy_metrics(reading, sources)
    child_metrics = {k: v for k, v in _numeric(energy).items()}
    child_metrics = {
        (
            "energy_kwh"
            if k == "energy_kwh"
            else k.replace("_kwh", "_energy_kwh")
            if k.endswith("_kwh")
            else k
        ): v
        for k, v in child_metrics.items()
    }
    prefixed = parent_keys(run.stage, {**run.metrics, "energy": energy})
    runs.log_metrics(client, run.run_id, {**child_metrics, **prefixed})
    runs.log_metrics(client, run.parent_id, prefixed)
    source_tags = {f"energy.source.{comp}": src for comp, src in sources.items()}
    hashes = {f"dvc.{k}": v for k, v in prov.stage_hashes(run.root, run.stage).items()}
    runs.set_tags(client, run.run_id, {**source_tags, **hashes})
    runs.set_tags(client, run.parent_id, source_tags)
    for path in run.artifacts:
        if path.is_file():
            client.log_artifact(run.run_id, str(path))
    client.set_terminated(run.run_id, "FINISHED")
    if owns_parent:
        client.set_terminated(run.parent_id, "FINISHED")


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
        _write_metrics(run, metrics_path, energy_metrics(None, {}))
        return
    client, _exp, parent, run_id = _start(stage, params, root)
    owns_parent = not os.environ.get(runs.PARENT_ENV)
    tr = params.tracking
    meter = EnergyMeter(tr.country_iso_code, tr.measure_power_secs, stage, tr.codecarbon_mode)
    run = StageRun(stage, run_id, parent, meter, root)
    meter.start()
    try:
        yield run
    except BaseException as exc:
        reading = meter.stop()
        with contextlib.suppress(Exception):
            energy = _numeric(energy_metrics(reading, meter.sources()))
            runs.log_metrics(client, run_id, energy)
            client.set_tag(run_id, "greenpipe.error", one_line(exc)[:5000])
        client.set_terminated(run_id, "FAILED")
        if owns_parent:
            client.set_terminated(parent, "FAILED")
        raise
    reading = meter.stop()
    _write_metrics(run, metrics_path, energy_metrics(reading, meter.sources()))
    try:
        _finish(client, run, reading, owns_parent)
    except BaseException:
        with contextlib.suppress(Exception):
            client.set_terminated(run_id, "FAILED")
            if owns_parent:
                client.set_terminated(parent, "FAILED")
        raise
