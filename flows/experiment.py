"""The experiment flow: one Prefect task per dvc.yaml stage, each executed through DVC.

DVC stays the single record of what ran (dvc.lock, the cache); Prefect adds the UI, retries,
schedules and the MLflow parent run that every stage's run nests under. The stage order
comes from DVC's own graph of dvc.yaml.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.states import Completed

from greenpipe.artifacts import read_json
from greenpipe.config import load_params
from greenpipe.graph import stage_order, up_to_date
from greenpipe.tracking import provenance as prov
from greenpipe.tracking import runs
from greenpipe.tracking.stage import record_cached

EXIT_USAGE = 2


class StageFailed(RuntimeError):
    """A stage's `dvc repro` exited non-zero; `code` is its exit status."""

    def __init__(self, stage: str, code: int, tail: str) -> None:
        super().__init__(f"stage '{stage}' failed (exit {code}): {tail}")
        self.stage, self.code = stage, code


def _retry_transient(task, task_run, state) -> bool:
    """Retry run-time failures only; a configuration error (exit 2) fails once, clearly."""
    try:
        state.result()
    except StageFailed as exc:
        return exc.code != EXIT_USAGE
    except Exception:
        return True
    return False


def stage_env(parent_run_id: str, tracking_uri: str) -> dict[str, str]:
    """The environment a stage runs in: this interpreter first on PATH, the parent run id."""
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env[runs.PARENT_ENV] = parent_run_id
    env["MLFLOW_TRACKING_URI"] = tracking_uri
    return env


def _run_streaming(cmd: list[str], cwd: str, env: dict[str, str]) -> tuple[int, str]:
    """Run cmd with its stderr shown live (progress bars) and its last 8 KiB kept for errors."""
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stderr=subprocess.PIPE)
    tail = b""
    while chunk := proc.stderr.read1(4096):
        sys.stderr.buffer.write(chunk)
        sys.stderr.flush()
        tail = (tail + chunk)[-8192:]
    return proc.wait(), tail.decode(errors="replace")


@task(retry_condition_fn=_retry_transient, log_prints=True)
def run_stage(stage: str, root: str, env: dict[str, str], force: bool = False):
    """`dvc repro --single-item <stage>`, or a Cached state if DVC says it is up to date."""
    log = get_run_logger()
    if not force and up_to_date(Path(root), stage):
        log.info("stage %s is up to date in dvc.lock: skipped", stage)
        return Completed(name="Cached", message=f"{stage}: up to date in dvc.lock")
    cmd = [str(Path(sys.executable).parent / "dvc"), "repro", "--quiet", "--single-item", stage]
    if force:
        cmd.append("--force")
    t0 = time.perf_counter()
    code, err_tail = _run_streaming(cmd, root, env)
    if code != 0:
        lines = [ln for ln in err_tail.replace("\r", "\n").splitlines() if ln.strip()]
        tail = next(
            (ln for ln in reversed(lines) if ln.startswith("greenpipe")),
            lines[-1] if lines else "no output",
        )
        raise StageFailed(stage, code, tail)
    log.info("stage %s ran in %.1f s", stage, time.perf_counter() - t0)
    return stage


def open_parent(root: Path, params, flow_run_name: str) -> tuple[object, str, str, str]:
    uri = runs.resolve_tracking_uri(params.tracking.mlflow_uri, root)
    runs.check_reachable(uri)
    client = runs.client_for(uri)
    exp_id = runs.ensure_experiment(client, params.experiment, root / params.tracking.artifact_dir)
    runs.reconcile_stale_runs(client, exp_id)
    tags = {
        runs.TAG_ROLE: "experiment",
        "greenpipe.driver": "prefect",
        "prefect.flow_run_name": flow_run_name,
        "mlflow.source.git.commit": prov.git_commit(root),
        **runs.process_tags(),
    }
    name = f"greenpipe run {time.strftime('%Y-%m-%d %H:%M:%S')}"
    run = client.create_run(exp_id, run_name=name, tags=tags)
    runs.log_params(client, run.info.run_id, prov.flatten(params.model_dump(mode="json")))
    return client, exp_id, run.info.run_id, uri


@flow(name="greenpipe-experiment", log_prints=True)
def experiment(root: str = ".", force: bool = False) -> dict[str, str]:
    """Run every dvc.yaml stage in graph order under one MLflow parent run."""
    from prefect.runtime import flow_run

    root_p = Path(root).resolve()
    params = load_params(root_p / "params.yaml")
    order = stage_order(root_p)
    client, exp_id, parent, uri = open_parent(root_p, params, str(flow_run.name or "local"))
    env = stage_env(parent, uri)
    task_opts = {
        "retries": params.orchestration.retries,
        "retry_delay_seconds": params.orchestration.retry_delays() or 0,
    }
    outcome: dict[str, str] = {}
    status = "FAILED"
    try:
        for stage in order:
            state = run_stage.with_options(name=stage, task_run_name=stage, **task_opts)(
                stage, str(root_p), env, force, return_state=True
            )
            outcome[stage] = state.name
            if state.is_failed():
                state.result()  # re-raise the stage's error
            if state.name == "Cached":
                blocks = [read_json(p) for p in prov.stage_metric_files(root_p, stage)]
                record_cached(client, exp_id, parent, stage, blocks)
        status = "FINISHED"
    finally:
        for name in ("dvc.lock", "params.yaml"):
            if (root_p / name).is_file():
                client.log_artifact(parent, str(root_p / name))
        client.set_tag(parent, "greenpipe.stages", ",".join(f"{k}={v}" for k, v in outcome.items()))
        client.set_terminated(parent, status)
    return outcome


def serve(root: str, name: str, cron: str | None) -> None:
    """Serve the experiment flow as a deployment (blocking): runs on `cron` and on demand.

    Needs a Prefect server (PREFECT_API_URL); the runs appear in its UI with one task per stage.
    """
    experiment.serve(
        name=name,
        cron=cron,
        parameters={"root": root},
        description="greenpipe experiment: every dvc.yaml stage through DVC, energy per stage",
        tags=["greenpipe"],
    )
