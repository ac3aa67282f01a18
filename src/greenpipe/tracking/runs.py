"""MLflow: the store, the experiment, parent runs, and reconciling runs left RUNNING.

Runs are driven through `MlflowClient` with explicit run ids (no fluent, thread-local active
run), so the same code works in a stage process, in a Prefect task thread and in tests.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from greenpipe import liveness
from greenpipe.errors import GreenpipeError
from greenpipe.tracking import known

PARENT_ENV = "GREENPIPE_PARENT_RUN_ID"
TAG_PARENT = "mlflow.parentRunId"
TAG_ROLE = "greenpipe.role"
TAG_INVOCATION = "greenpipe.invocation"
TAG_RECORD = "greenpipe.record_id"  # the stage run record a child run logged

# Set by client_for where unset: MLflow's own (7 retries, ~4 min; 120 s a request) keep a
# stage, its work done and energy spent, waiting minutes on a dead tracking server; these fail
# in seconds. Before mlflow is imported: it decides on telemetry at import. Offline: none.
MLFLOW_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
    "MLFLOW_DISABLE_TELEMETRY": "true",
}


def resolve_tracking_uri(configured: str, root: Path) -> str:
    """MLFLOW_TRACKING_URI wins over params; a relative SQLite path is made absolute under root."""
    uri = os.environ.get("MLFLOW_TRACKING_URI") or configured
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri[len(prefix) :].startswith("/"):
        uri = prefix + str((root / uri[len(prefix) :]).resolve())
    return uri


DEFAULT_PORTS = {"http": 80, "https": 443}


def server_address(parsed) -> tuple[str, int]:
    """(host, port) of an http(s) tracking URI: its port, else the scheme's (80 or 443)."""
    return parsed.hostname, parsed.port or DEFAULT_PORTS[parsed.scheme]


def check_reachable(uri: str) -> None:
    """Fail fast, before any energy is spent, if the tracking store cannot be used."""
    parsed = urlparse(uri)
    if parsed.scheme == "sqlite":
        folder = Path(uri[len("sqlite:///") :]).parent
        if not folder.is_dir() or not os.access(folder, os.W_OK):
            raise GreenpipeError(
                f"MLflow store folder '{folder}' is missing or not writable; "
                "fix tracking.mlflow_uri or MLFLOW_TRACKING_URI"
            )
    elif parsed.scheme in ("http", "https"):
        try:
            with socket.create_connection(server_address(parsed), timeout=3):
                pass
        except OSError:
            raise GreenpipeError(
                f"MLflow tracking server {uri} is unreachable; start it "
                "(mlflow server) or fix MLFLOW_TRACKING_URI"
            ) from None


def client_for(uri: str):
    """A retrying client of the store at `uri`, with MLFLOW_DEFAULTS set first (where unset):
    the one place greenpipe configures MLflow, before it is imported."""
    import logging

    for key, value in MLFLOW_DEFAULTS.items():
        os.environ.setdefault(key, value)
    import mlflow
    from mlflow.tracking import MlflowClient

    # store creation and migrations log at INFO: keep stderr for the one-line errors
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    mlflow.set_tracking_uri(uri)
    return RetryingClient(MlflowClient(tracking_uri=uri))


class RetryingClient:
    """An MlflowClient whose calls retry, with backoff, while SQLite says "database is locked".

    Several experiments writing to one SQLite store at once make SQLite refuse a write now and
    then; retrying loses nothing, where giving up would lose a run or a metric.
    """

    def __init__(self, client, attempts: int = 10, delay_s: float = 0.1) -> None:
        self._client, self._attempts, self._delay = client, attempts, delay_s

    def __getattr__(self, name: str):
        attr = getattr(self._client, name)
        if not callable(attr):
            return attr

        def call(*args, **kwargs):
            for attempt in range(self._attempts):
                try:
                    return attr(*args, **kwargs)
                except Exception as exc:
                    locked = "database is locked" in str(exc).lower()
                    if not locked or attempt == self._attempts - 1:
                        raise
                    time.sleep(self._delay * 2**attempt)
            return None

        return call


# MLflow 3 classes an experiment by this tag (its Overview page and experiment list); the
# 3.17 UI also needs TRAINING_VIEW in the link to open on the runs table
EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}


def ensure_experiment(client, name: str, artifact_root: Path) -> str:
    """The experiment's id, creating it with an explicit artifact location if needed; marked
    as model training (EXPERIMENT_KIND), an experiment made before that included."""
    exp = client.get_experiment_by_name(name)
    if exp is None:
        artifact_root.mkdir(parents=True, exist_ok=True)
        try:
            uri = artifact_root.resolve().as_uri()
            exp_id = client.create_experiment(name, artifact_location=uri, tags=EXPERIMENT_KIND)
            return exp_id
        except Exception:  # created concurrently by another process
            exp = client.get_experiment_by_name(name)
            if exp is None:
                raise
    if exp.lifecycle_stage == "deleted":
        client.restore_experiment(exp.experiment_id)
    for key, value in EXPERIMENT_KIND.items():
        if exp.tags.get(key) != value:
            client.set_experiment_tag(exp.experiment_id, key, value)
    return exp.experiment_id


@dataclass(frozen=True)
class Store:
    """An open tracking store: the client, the experiment's id and the tracking URI."""

    client: Any
    exp_id: str
    uri: str


def open_client(tracking: Any, root: Path) -> tuple[Any, str]:
    """A retrying client of the tracking store and its URI, resolved and checked first."""
    uri = resolve_tracking_uri(tracking.mlflow_uri, root)
    check_reachable(uri)
    return client_for(uri), uri


def open_store(tracking: Any, experiment: str, root: Path) -> Store:
    """The one way to open the tracking store for writing: `open_client`, then create or
    restore the experiment, and mark KILLED the runs of dead processes."""
    client, uri = open_client(tracking, root)
    return _store(client, uri, experiment, root / tracking.artifact_dir, root)


def store_at(uri: str, experiment: str, artifact_root: Path, root: Path) -> Store:
    """open_store on a resolved tracking URI (a stage record's)."""
    return _store(client_for(uri), uri, experiment, artifact_root, root)


def _store(client, uri: str, experiment: str, artifact_root: Path, root: Path) -> Store:
    """The experiment created or restored, its id remembered for `root`, the runs of dead
    processes marked KILLED."""
    exp_id = ensure_experiment(client, experiment, artifact_root)
    known.remember(root, uri, experiment, exp_id)
    reconcile_stale_runs(client, exp_id)
    return Store(client, exp_id, uri)


MLFLOW_UI = "http://127.0.0.1:5000"  # where `make mlflow-ui` serves the SQLite store
# MLflow 3.17's UI shows an experiment in the view of its global GenAI / Model training
# switch (remembered in the browser, GenAI at first) whatever its experimentKind tag; this
# query parameter selects the model-training view, where the runs table is
TRAINING_VIEW = "workflowType=machine_learning"


def ui_base(uri: str) -> str:
    """The MLflow UI's address: the tracking server's when the store is one, else the
    address `make mlflow-ui` serves the SQLite store on."""
    return (uri if uri.startswith(("http://", "https://")) else MLFLOW_UI).rstrip("/")


def experiment_url(uri: str, exp_id: str) -> str:
    """The experiment's runs table in the MLflow UI."""
    return f"{ui_base(uri)}/#/experiments/{exp_id}?{TRAINING_VIEW}"


def run_url(store: Store, run_id: str) -> str:
    """The run's page in the MLflow UI (in its model-training view)."""
    return f"{ui_base(store.uri)}/#/experiments/{store.exp_id}/runs/{run_id}?{TRAINING_VIEW}"


def create_parent(
    store: Store,
    name: str,
    driver: str,
    params_flat: dict[str, Any],
    tags: dict[str, str],
    start_ms: int | None = None,
) -> str:
    """The one way to open a parent (experiment) run: its name, the driver that made it
    (prefect, dvc, sweep, manual), process tags for stale-run reconciliation, every param,
    and its start (ms since the epoch; now by default)."""
    all_tags = {TAG_ROLE: "experiment", "greenpipe.driver": driver, **process_tags(), **tags}
    run = store.client.create_run(store.exp_id, start_ms, tags=all_tags, run_name=name)
    log_params(store.client, run.info.run_id, params_flat)
    return run.info.run_id


def process_tags() -> dict[str, str]:
    """Who owns a run, for stale-run reconciliation: this process's pid and start time, and
    the machine (kernel boot and pid namespace) the pid belongs to; the host for people."""
    return {
        "greenpipe.host": socket.gethostname(),
        "greenpipe.machine": liveness.machine_id(),
        "greenpipe.pid": str(os.getpid()),
        "greenpipe.pid_started": f"{liveness.started_at():.2f}",
    }


def _owner_gone(tags: dict[str, str]) -> bool:
    """The run's process is certainly gone (liveness.gone); False for runs without the tags."""
    pid, started = tags.get("greenpipe.pid", ""), tags.get("greenpipe.pid_started")
    if not pid.isdigit():
        return False
    try:
        start = float(started) if started is not None else None
    except ValueError:
        start = None
    return liveness.gone(tags.get("greenpipe.machine"), int(pid), start)


def reconcile_stale_runs(client, experiment_id: str) -> list[str]:
    """Mark KILLED the runs left RUNNING by a process that no longer exists.

    A process is matched by machine (boot id and pid namespace), pid and start time, so a
    container that shares this hostname, or a pid the system has since reused, never gets a
    live run killed or keeps a dead one RUNNING. Runs recorded without the machine (before
    greenpipe recorded it) are left alone: their pid cannot be placed.
    """
    killed = []
    runs = client.search_runs([experiment_id], "attributes.status = 'RUNNING'", max_results=500)
    for run in runs:
        if _owner_gone(run.data.tags):
            client.set_terminated(run.info.run_id, "KILLED")
            killed.append(run.info.run_id)
    return killed


def dvc_invocation() -> tuple[str, str] | None:
    """(key, label) of the `dvc repro` / `dvc exp run` process this stage runs under, if any."""
    import psutil

    proc = psutil.Process()
    for parent in proc.parents():
        try:
            cmd = parent.cmdline()
        except psutil.Error:
            continue
        exe = [Path(c).name for c in cmd[:2]]
        if "dvc" in exe and any(a in ("repro", "exp") for a in cmd):
            verb = "dvc exp run" if "exp" in cmd else "dvc repro"
            return f"{parent.pid}-{parent.create_time():.0f}", verb
    return None


def runs_of_record(store: Store, record_id: str, max_results: int = 10) -> list:
    """The runs that logged the stage run record `record_id` (tag TAG_RECORD)."""
    flt = f"tags.`{TAG_RECORD}` = '{record_id}'"
    return store.client.search_runs([store.exp_id], flt, max_results=max_results)


def parent_hint(env: dict[str, str] | None = None) -> dict[str, Any]:
    """What a stage knows of the parent run it nests under, without MLflow: the run id its
    driver set (GREENPIPE_PARENT_RUN_ID: `greenpipe run`, sweeps), else the `dvc repro` /
    `dvc exp run` process it runs under ([key, label]) and DVC's experiment name."""
    env = os.environ if env is None else env
    return {
        "run_id": env.get(PARENT_ENV) or None,
        "invocation": None if env.get(PARENT_ENV) else dvc_invocation(),
        "dvc_exp_name": env.get("DVC_EXP_NAME") or None,
    }


def find_or_create_parent(store: Store, params_flat: dict[str, Any], hint: dict[str, Any]) -> str:
    """The parent run a stage nests under (hint: parent_hint() of the stage's process).

    The driver's run id wins. Otherwise all stages run by one `dvc repro` / `dvc exp run`
    invocation share one parent, found by a tag that names the DVC process; a stage run by
    hand gets a parent of its own.
    """
    if hint.get("run_id"):
        return hint["run_id"]
    inv = hint.get("invocation")
    if inv:
        flt = f"tags.`{TAG_INVOCATION}` = '{inv[0]}'"
        found = store.client.search_runs([store.exp_id], flt, max_results=1)
        if found:
            store.client.update_run(found[0].info.run_id, status="RUNNING")
            return found[0].info.run_id
    label = inv[1] if inv else "manual stage"
    exp_name = hint.get("dvc_exp_name")
    tags = {TAG_INVOCATION: inv[0]} if inv else {}
    if exp_name:
        tags["dvc.exp_name"] = exp_name
    start = hint.get("started_at_unix_s") or time.time()  # the first stage's start
    name = f"{exp_name or label} {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(start))}"
    return create_parent(store, name, label.split()[0], params_flat, tags, int(start * 1000))


def _log_batch(client, run_id: str, field: str, items: list, size: int) -> None:
    """`log_batch` in chunks of `size` items of one kind (MLflow takes at most 100 params or
    tags, 1000 metrics per call): a few SQLite transactions instead of one per item."""
    for i in range(0, len(items), size):
        client.log_batch(run_id, **{field: items[i : i + size]})


def log_params(client, run_id: str, flat: dict[str, Any]) -> None:
    from mlflow.entities import Param

    _log_batch(client, run_id, "params", [Param(k, str(v)[:6000]) for k, v in flat.items()], 100)


def set_tags(client, run_id: str, tags: dict[str, str]) -> None:
    from mlflow.entities import RunTag

    _log_batch(client, run_id, "tags", [RunTag(k, str(v)[:5000]) for k, v in tags.items()], 100)


def log_metrics(client, run_id: str, metrics: dict[str, float], step: int = 0) -> None:
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    items = [Metric(k, float(v), now, step) for k, v in metrics.items()]
    _log_batch(client, run_id, "metrics", items, 500)
