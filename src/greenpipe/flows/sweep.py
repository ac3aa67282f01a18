"""Sweeps: every variant of a plan as a DVC experiment in its own temporary workspace
(`dvc exp run --temp`), run concurrently by a Prefect task runner (Dask by default), each with
its own MLflow parent run tagged with the sweep's id. A failed variant does not stop the others.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

import yaml
from prefect import flow, get_run_logger, task
from prefect.task_runners import ThreadPoolTaskRunner

from greenpipe.config import validate_params
from greenpipe.errors import console_without_tracebacks
from greenpipe.flows.cluster import shipped_env
from greenpipe.graph import stage_order
from greenpipe.report import summary
from greenpipe.sweep import Variant, apply, load_plan
from greenpipe.tracking import ledger, recorder, records, runs
from greenpipe.tracking import provenance as prov

# a failed variant reaches the console as its one-line reason (GREENPIPE_DEBUG=1: tracebacks);
# at import, so that the Dask workers that import this module for its tasks do the same
console_without_tracebacks()

TAG_SWEEP = "greenpipe.sweep"


def task_runner(workers: int, address: str | None, runner: str):
    """Dask (a LocalCluster of `workers` single-threaded processes, or an existing cluster by
    address) or Prefect's thread pool."""
    if runner == "threads":
        return ThreadPoolTaskRunner(max_workers=workers)
    from prefect_dask import DaskTaskRunner

    if address:
        return DaskTaskRunner(address=address)
    return DaskTaskRunner(
        cluster_kwargs={
            "n_workers": workers,
            "threads_per_worker": 1,
            "processes": True,
            "dashboard_address": None,
        }
    )


@contextlib.contextmanager
def shared_api():
    """One Prefect API for the flow and every Dask worker, and no other.

    Without an API URL a Prefect task run in a Dask worker starts a temporary server of its
    own in that worker, which outlives the worker when the worker is stopped. Here the API
    the user configured (PREFECT_API_URL), or else one temporary server started now, is put
    in Prefect's settings context, which prefect-dask sends with every task: each worker
    uses it, and may not start a server of its own (ephemeral mode off). The environment
    variable is exported too, for the processes of a LocalCluster.
    """
    from prefect.settings import (
        PREFECT_API_URL,
        PREFECT_SERVER_EPHEMERAL_ENABLED,
        temporary_settings,
    )

    server, url = None, PREFECT_API_URL.value() or os.environ.get("PREFECT_API_URL")
    if not url:
        from prefect.server.api.server import SubprocessASGIServer

        server = SubprocessASGIServer()
        server.start(timeout=120)
        url = server.api_url
    before = os.environ.get("PREFECT_API_URL")
    os.environ["PREFECT_API_URL"] = url
    try:
        with temporary_settings({PREFECT_API_URL: url, PREFECT_SERVER_EPHEMERAL_ENABLED: False}):
            try:
                yield url
            finally:
                _drain_to_api()  # else the queued logs retry a stopped server for a minute
    finally:
        if before is None:
            os.environ.pop("PREFECT_API_URL", None)
        if server is not None:
            server.stop()


def _drain_to_api() -> None:
    """Send the logs and events Prefect still holds to the API while it is up."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogHandler

    with contextlib.suppress(Exception):
        APILogHandler.flush()
    with contextlib.suppress(Exception):
        EventsWorker.drain_all(timeout=15)


MODE_KEY = "tracking.codecarbon_mode"


def measured_per_process(variants: list[Variant], workers: int) -> list[Variant]:
    """Variants that run side by side: CodeCarbon in process mode (unless the plan chose a
    mode), since in machine mode every stage's tracker would count the other variants' load."""
    if workers <= 1:
        return variants
    return [
        v if MODE_KEY in v.overrides else Variant(v.name, {**v.overrides, MODE_KEY: "process"})
        for v in variants
    ]


def variant_env(parent_id: str, uri: str, threads: int) -> dict[str, str]:
    """What travels with a variant to its worker: the allow-listed variables of this
    environment (cluster.shipped_env: never credentials), the variant's parent run, and a
    thread budget so variants that run side by side do not fight over cores."""
    env = shipped_env(os.environ)
    env.update(
        {
            runs.PARENT_ENV: parent_id,
            "MLFLOW_TRACKING_URI": uri,
            "OMP_NUM_THREADS": str(threads),
            "MKL_NUM_THREADS": str(threads),
            "TF_NUM_INTRAOP_THREADS": str(threads),
            "TF_NUM_INTEROP_THREADS": "1",
        }
    )
    return env


RACE_ATTEMPTS = 4
# DVC's own races between variants that run at once in one repo. A variant that lost one
# starts again: what it ran is restored from the run-cache (no code runs twice)
DVC_RACES = {
    # the temporary workspaces are set up under the repo's lock, which DVC waits for 3 s only
    "the repo's DVC lock is busy": re.compile(r"Unable to acquire lock"),
    # two variants saving the same stage run to the run-cache at once (DVC renames a
    # temporary file the other has just moved)
    "another variant saved the same stage run to DVC's run-cache": re.compile(
        r"No such file or directory: '[^']*\.dvc/cache/runs/[^']*\.tmp'"
    ),
}


def dvc_race(output: str) -> str | None:
    """What DVC race a failed `dvc exp run` lost (DVC_RACES), if any."""
    return next((why for why, pattern in DVC_RACES.items() if pattern.search(output)), None)


@task(log_prints=True)
def run_variant(root: str, exp_name: str, set_args: list[str], env: dict) -> dict:
    """`dvc exp run --temp` for one variant; returns its status and, on failure, the reason."""
    bin_dir = str(Path(sys.executable).parent)  # the worker's environment, not the client's
    t0 = time.perf_counter()
    for attempt in range(RACE_ATTEMPTS):
        proc = subprocess.run(
            [str(Path(bin_dir) / "dvc"), "exp", "run", "--temp", "-n", exp_name, *set_args],
            cwd=root,
            env={**os.environ, **env, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", "")},
            capture_output=True,
            text=True,
        )
        if proc.returncode == 0 or not (race := dvc_race(proc.stderr + proc.stdout)):
            break
        get_run_logger().info("%s: %s; again (%d)", exp_name, race, attempt + 1)
        time.sleep(2.0 * (attempt + 1))
    # the variant's run records, logged by the detached logger its stages started (on this
    # worker's machine): in MLflow before the sweep brings the variant's ledger up to date
    recorder.flush(records.folder(Path(root)), parent=env[runs.PARENT_ENV])
    lines = [ln for ln in (proc.stderr + proc.stdout).splitlines() if ln.strip()]
    # the stage's own one-line error, else DVC's last ERROR line (DVC ends with a support
    # banner that says nothing about the failure), else the last line
    reason = next(
        (ln for ln in reversed(lines) if ln.startswith("greenpipe")),
        next((ln for ln in reversed(lines) if ln.startswith("ERROR")), lines[-1] if lines else ""),
    )
    ok = proc.returncode == 0
    get_run_logger().info(
        "%s %s in %.0f s", exp_name, "finished" if ok else "FAILED", time.perf_counter() - t0
    )
    return {
        "variant": exp_name,
        "ok": ok,
        "reason": "" if ok else reason,
        "seconds": time.perf_counter() - t0,
    }


def exp_metrics(root: Path, paths: list[str]) -> dict[str, dict[str, dict]]:
    """{DVC experiment name: {record file: content}}: the stages' records (`paths`, DVC
    outputs) as each experiment's commit holds them (read through DVC from its cache)."""
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "dvc"), "exp", "show", "--json"],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        return {}
    revs = {
        r.get("name"): r.get("rev")
        for rev in json.loads(proc.stdout or "[]")
        for exp in rev.get("experiments") or []
        for r in exp.get("revs") or []
    }
    return {name: _records_at(root, sha, paths) for name, sha in revs.items() if sha}


def _records_at(root: Path, sha: str, paths: list[str]) -> dict[str, dict]:
    from dvc.api import DVCFileSystem

    fs, out = DVCFileSystem(str(root), rev=sha), {}
    for path in paths:
        with contextlib.suppress(FileNotFoundError, ValueError, OSError):
            out[path] = json.loads(fs.read_text(path))
    return out


def _reconcile_variant(
    store: runs.Store, parent: str, stages: list[str], root: Path, metrics: dict[str, dict]
) -> None:
    """The variant's ledger: every stage DVC did not run for it (up to date or restored from
    the run-cache) inherited from the experiment's committed metrics files, and the totals."""
    blocks = {
        stage: [metrics[f] for f in prov.stage_metric_paths(root, stage) if metrics.get(f)]
        for stage in stages
    }
    ledger.reconcile(store, parent, blocks)


@flow(name="greenpipe-sweep", log_prints=True)
def sweep(plan: str, root: str = ".", workers: int = 2) -> dict:
    """Run every variant of `plan`; returns {"sweep", "results": [...]}."""
    root_p = Path(root).resolve()
    raw = yaml.safe_load((root_p / "params.yaml").read_text())
    params = validate_params(raw)
    name, variants = load_plan(root_p / plan if not Path(plan).is_absolute() else plan, raw)
    variants = measured_per_process(variants, workers)
    sweep_id = f"{name}-{uuid.uuid4().hex[:6]}"
    store = runs.open_store(params.tracking, params.experiment, root_p)
    threads = max(1, (os.cpu_count() or 1) // max(1, workers))
    futures, parents = [], {}
    for v in variants:
        parent = _open_parent(store, raw, v, sweep_id)
        exp_name = f"{v.name}-{sweep_id[-6:]}"
        parents[exp_name] = (parent, v)
        env = variant_env(parent, store.uri, threads)
        futures.append(run_variant.submit(str(root_p), exp_name, v.set_args(), env))
    results = [f.result(raise_on_failure=False) for f in futures]
    results = [
        r if isinstance(r, dict) else {"variant": "?", "ok": False, "reason": str(r)}
        for r in results
    ]
    _close_parents(store, parents, results, root_p, raw)
    publish_variants(store, sweep_id, parents, results)
    return {"sweep": sweep_id, "results": results}


def publish_variants(store: runs.Store, sweep_id: str, parents: dict, results: list) -> None:
    """The sweep's artifact in the Prefect UI: each variant, how it ended, its MLflow run."""
    from prefect.artifacts import create_markdown_artifact

    rows = [
        {**r, "url": runs.run_url(store, parents[r["variant"]][0])}
        for r in results
        if r["variant"] in parents
    ]
    create_markdown_artifact(
        markdown=summary.variant_markdown(sweep_id, rows),
        key="greenpipe-sweep",
        description="the sweep's variants and their MLflow parent runs",
    )


def _open_parent(store: runs.Store, raw: dict, v: Variant, sweep_id: str) -> str:
    tags = {TAG_SWEEP: sweep_id, "greenpipe.variant": v.name}
    flat = prov.flatten(validate_params(apply(raw, v.overrides)).model_dump(mode="json"))
    return runs.create_parent(store, f"{v.name} ({sweep_id})", "sweep", flat, tags)


def _close_parents(store: runs.Store, parents, results, root_p: Path, raw: dict) -> None:
    client = store.client
    shown = {}
    if any(r["ok"] for r in results):
        order = stage_order(root_p)
        records = sorted({p for s in order for p in prov.stage_metric_paths(root_p, s)})
        shown = exp_metrics(root_p, records)
    for r in results:
        if r["variant"] not in parents:
            continue
        parent, v = parents[r["variant"]]
        client.set_tag(parent, "dvc.exp_name", r["variant"])
        if r["ok"]:
            stages = stage_order_for(root_p, apply(raw, v.overrides))
            _reconcile_variant(store, parent, stages, root_p, shown.get(r["variant"], {}))
        else:
            client.set_tag(parent, "greenpipe.error", r["reason"][:5000])
        client.set_terminated(parent, "FINISHED" if r["ok"] else "FAILED")


def stage_order_for(root: Path, raw_variant: dict) -> list[str]:
    """The DVC stage names of a variant, in DVC's order: DVC's own graph of dvc.yaml resolved
    with the variant's params (its foreach items are its train.backends)."""
    with prov.resolution_copy(root, raw_variant, dvc_repo=True) as copy:
        return stage_order(copy)
