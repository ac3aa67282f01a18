"""The experiment flow: one Prefect task per dvc.yaml stage, each executed through DVC.

DVC stays the single record of what ran (dvc.lock, the cache); Prefect adds the UI, retries,
schedules and the MLflow parent run that every stage's run nests under. The stage order
comes from DVC's own graph of dvc.yaml.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.states import Completed

from greenpipe.artifacts import read_json
from greenpipe.config import load_params
from greenpipe.errors import (
    DVC_FAILED,
    EXIT_RUNTIME,
    EXIT_USAGE,
    StageFailed,
    UsageError,
    console_without_tracebacks,
)
from greenpipe.flows import servers as stage_servers
from greenpipe.flows.servers import python_env
from greenpipe.graph import open_repo, stage_plan
from greenpipe.report import summary
from greenpipe.tracking import idle, ledger, recorder, records, runs
from greenpipe.tracking import provenance as prov
from greenpipe.tracking.stage import TRACKING_ENV

# a failed stage reaches the console as its one-line error (GREENPIPE_DEBUG=1: tracebacks);
# at import, so that the processes `serve` starts for each flow run do the same
console_without_tracebacks()


def _retry_transient(task, task_run, state) -> bool:
    """Retry run-time failures only; a configuration error (exit 2) fails once, clearly."""
    try:
        state.result()
    except StageFailed as exc:
        return exc.code != EXIT_USAGE
    except Exception:
        return True
    return False


def stage_env(
    parent_run_id: str, tracking_uri: str, base: idle.IdleBaseline | None = None
) -> dict[str, str]:
    """The environment a stage runs in: this interpreter first on PATH, the parent run id,
    and the idle baseline every stage of the run subtracts."""
    env = python_env()
    env[runs.PARENT_ENV] = parent_run_id
    env["MLFLOW_TRACKING_URI"] = tracking_uri
    env[records.LOGGED_BY_ENV] = str(os.getpid())  # this flow logs its stages' records
    if base is not None:
        env[idle.RUN_ENV] = base.to_json()
    return env


def run_baseline(tracking) -> idle.IdleBaseline | None:
    """The idle baseline of this run's stages: the cached one (`greenpipe run` measured it
    before anything started), or measured now, before the stage servers start."""
    if os.environ.get(TRACKING_ENV, "on") == "off":
        return None
    return idle.baseline_for(tracking)


@contextlib.contextmanager
def stderr_tail(keep: int = 8192) -> Iterator[dict[str, str]]:
    """fd 2 goes through a pipe while the block runs: all of it still reaches the console
    live (a stage's progress bars), and its last `keep` bytes are kept, for the stage's own
    last lines (box["tail"] after the block). The stage processes DVC starts inherit fd 2."""
    sys.stderr.flush()
    saved = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)
    tail = bytearray()

    def pump() -> None:
        while chunk := os.read(read_end, 4096):
            view = memoryview(chunk)
            while view:
                view = view[os.write(saved, view) :]
            tail.extend(chunk)
            del tail[:-keep]

    reader = threading.Thread(target=pump, name="greenpipe-stderr", daemon=True)
    reader.start()
    box: dict[str, str] = {}
    try:
        yield box
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)  # the pipe's last write end this process holds is closed
        reader.join(timeout=10)  # EOF once the stage's processes have exited
        os.close(saved)
        if not reader.is_alive():
            os.close(read_end)
        box["tail"] = bytes(tail).decode(errors="replace")


HOW = {
    "Cached": "up to date in dvc.lock",
    "Restored": "restored by DVC from its run-cache (no code ran)",
}


def recorded_by(root: Path, stage: str) -> str | None:
    """The parent run that recorded the stage's metrics files now in the workspace."""
    for path in prov.stage_metric_files(root, stage):
        with contextlib.suppress(OSError, ValueError):
            rec = (read_json(path).get("energy") or {}).get("record") or {}
            if rec.get("parent_run_id"):
                return rec["parent_run_id"]
    return None


def repro(stage: str, root: str, env: dict[str, str], force: bool = False) -> bool:
    """DVC's `repro --single-item <stage>` through its Python API, in this process (no `dvc`
    process to start per stage); the stage's own process still runs under `$SHELL -c`, its
    stderr shown live. True if DVC ran the stage or restored it from its run-cache, False if
    it was up to date. StageFailed if it fails: the stage's one-line error, its exit status,
    or the signal that killed it (DVC's message names the status)."""
    from dvc.exceptions import DvcException
    from dvc.stage.exceptions import StageCmdFailedError

    # DVC's progress lines ("Running stage ...", "... didn't change, skipping") stay off the
    # console, as they did when `dvc repro`'s stdout was dropped; its warnings still show
    dvc_log = logging.getLogger("dvc")
    level = dvc_log.level
    dvc_log.setLevel(logging.WARNING)
    with stderr_tail() as box, contextlib.ExitStack() as undo:
        undo.callback(dvc_log.setLevel, level)
        try:
            # DVC resolves a bare stage name against the working directory: name the file
            target = f"{Path(root).resolve() / 'dvc.yaml'}:{stage}"
            with open_repo(Path(root)) as repo:
                return bool(repo.reproduce(target, single_item=True, force=force, run_env=env))
        except DvcException as exc:
            error = exc
    cause = error.__cause__ or error
    if not isinstance(cause, StageCmdFailedError):  # DVC's own failure: no stage output
        raise StageFailed(stage, EXIT_RUNTIME, " ".join(str(cause).split())) from None
    raise StageFailed.from_stderr(
        stage, f"{box['tail']}\n{DVC_FAILED}'{stage}': {cause}\n", 255
    ) from None


@task(retry_condition_fn=_retry_transient, log_prints=True)
def run_stage(stage: str, root: str, env: dict[str, str], force: bool = False):
    """`dvc repro --single-item <stage>`: a Cached state if DVC found it up to date, a
    Restored state if DVC restored its outputs from the run-cache without running it."""
    log = get_run_logger()
    t0 = time.perf_counter()
    if not repro(stage, root, env, force):
        log.info("stage %s is up to date in dvc.lock: skipped", stage)
        return Completed(name="Cached", message=f"{stage}: {HOW['Cached']}")
    if recorded_by(Path(root), stage) != env[runs.PARENT_ENV]:
        log.info("stage %s: %s", stage, HOW["Restored"])
        return Completed(name="Restored", message=f"{stage}: {HOW['Restored']}")
    log.info("stage %s ran in %.1f s", stage, time.perf_counter() - t0)
    return stage


def open_parent(root: Path, params, flow_run_name: str) -> tuple[runs.Store, str]:
    store = runs.open_store(params.tracking, params.experiment, root)
    tags = {
        "prefect.flow_run_name": flow_run_name,
        "mlflow.source.git.commit": prov.git_commit(root),
    }
    name = f"greenpipe run {time.strftime('%Y-%m-%d %H:%M:%S')}"
    flat = prov.flatten(params.model_dump(mode="json"))
    return store, runs.create_parent(store, name, "prefect", flat, tags)


# set by `greenpipe serve` for the runs it executes: the one repo its deployment may run on
SERVED_ROOT_ENV = "GREENPIPE_SERVED_ROOT"


def deployment_root(root: str) -> Path:
    """The repo a run works on. A run of a deployment may only work on the deployment's own
    repo (the one `greenpipe serve` serves, or the working directory a Prefect worker's pull
    step set): whoever reaches the Prefect API must not run stages on any other folder."""
    from prefect.runtime import deployment

    root_p = Path(root).resolve()
    if deployment.id is None:
        return root_p  # a direct call: `greenpipe run --root ...` runs where it is told
    own = Path(os.environ.get(SERVED_ROOT_ENV) or os.getcwd()).resolve()
    if root_p != own:
        raise UsageError(
            f"root '{root}' refused: deployment '{deployment.name}' runs on {own} only; "
            "serve or deploy the other repo from that repo itself"
        )
    return root_p


def run_graph(
    graph: dict[str, list[str]], root: str, env: dict, force: bool, opts: dict, outcome: dict
) -> None:
    """One run_stage task per stage, in graph order; each stage's state name into `outcome`;
    the first failed stage's error is raised."""
    states: dict = {}
    for stage, upstream in graph.items():
        # wait_for: the UI's graph draws dvc.yaml's edges (DVC still runs one at a time)
        state = run_stage.with_options(name=stage, task_run_name=stage, **opts)(
            stage, root, env, force, wait_for=[states[u] for u in upstream], return_state=True
        )
        states[stage], outcome[stage] = state, state.name
        if state.is_failed():
            state.result()  # re-raise the stage's error


@flow(name="greenpipe-experiment", log_prints=True)
def experiment(root: str = ".", force: bool = False) -> dict[str, str]:
    """Run every dvc.yaml stage in graph order under one MLflow parent run (a deployment's
    run only on the deployment's own repo)."""
    from prefect.runtime import flow_run

    root_p = deployment_root(root)
    params = load_params(root_p / "params.yaml")
    graph, runnable = stage_plan(root_p, force)
    base = run_baseline(params.tracking)
    # the stage servers preload the stages' imports while MLflow opens (stage_server.py);
    # under `greenpipe run` they were started before Prefect's server (servers.start_early)
    with stage_servers.for_flow(runnable) as servers:
        store, parent = open_parent(root_p, params, str(flow_run.name or "local"))
        recorder.drain_if_free(records.folder(root_p))  # records a killed run left: logged now
        outcome: dict[str, str] = {}
        status = "FAILED"
        try:
            env = servers.stage_env(stage_env(parent, store.uri, base))
            if servers.procs:
                get_run_logger().info(
                    "stage servers %s ready %.1f s after they started%s",
                    ", ".join(servers.procs),
                    servers.ready_after_s,
                    " (before Prefect's server, by greenpipe run)" if servers.early else "",
                )
            # the stages' run records are logged to MLflow by this process, as they end
            with recorder.Pump(records.folder(root_p)):
                run_graph(graph, str(root_p), env, force, task_options(params), outcome)
            status = "FINISHED"
        finally:
            close_parent(root_p, store, parent, outcome, status)
    return outcome


def task_options(params) -> dict:
    return {
        "retries": params.orchestration.retries,
        "retry_delay_seconds": params.orchestration.retry_delays() or 0,
    }


def close_parent(root_p: Path, store: runs.Store, parent: str, outcome: dict, status: str):
    """The parent run's ledger, its dvc.lock and params.yaml, the stages' states, its status
    and the Prefect artifact of the stages' energy."""
    how = {s: HOW[st] for s, st in outcome.items() if st in HOW}
    blocks = ledger.workspace_blocks(root_p, list(outcome))
    ledger.reconcile(store, parent, blocks, how)
    client = store.client
    for name in ("dvc.lock", "params.yaml"):
        if (root_p / name).is_file():
            client.log_artifact(parent, str(root_p / name))
    client.set_tag(parent, "greenpipe.stages", ",".join(f"{k}={v}" for k, v in outcome.items()))
    client.set_terminated(parent, status)
    publish_energy(store, parent, summary.stage_rows(blocks, outcome))


def publish_energy(store: runs.Store, parent: str, rows: list[dict]) -> None:
    """The flow run's artifact in the Prefect UI: its stages' energy and the MLflow run."""
    from prefect.artifacts import create_markdown_artifact

    url = runs.run_url(store, parent)
    create_markdown_artifact(
        markdown=summary.stage_markdown(rows, url, parent),
        key="greenpipe-energy",
        description="energy per stage (CodeCarbon) and the MLflow parent run",
    )


def serve(root: str, name: str, cron: str | None) -> None:
    """Serve the experiment flow as a deployment (blocking): runs on `cron` and on demand.

    Needs a Prefect server (PREFECT_API_URL); the runs appear in its UI with one task per stage.
    A run that asks for another root than `root` is refused (see deployment_root).
    """
    os.environ[SERVED_ROOT_ENV] = str(Path(root).resolve())  # inherited by each run's process
    experiment.serve(
        name=name,
        cron=cron,
        parameters={"root": root},
        description="greenpipe experiment: every dvc.yaml stage through DVC, energy per stage",
        tags=["greenpipe"],
    )
