"""Sweeps on an existing Dask cluster: what travels to the workers, and what every worker is
checked for before a variant runs.

Contract (README, "Sweeps on a Dask cluster"):
- the scheduler and every worker run from an environment where greenpipe is installed (they
  import the tasks from greenpipe.flows, never from the repo's flows/ folder);
- every worker sees this repo at the same absolute path (a shared filesystem): it is proven by
  a marker file written here and looked for there, so a second copy at that path is refused;
- the MLflow store is one they all reach: a SQLite or file store only when every worker runs
  on this machine (same kernel), else a tracking server (MLFLOW_TRACKING_URI=http://...);
- the Prefect API is one they all reach: the temporary server greenpipe starts listens on
  127.0.0.1, so workers on other hosts need PREFECT_API_URL;
- only the variables in SHIPPED_* travel with a variant, never the whole environment: a
  worker's credentials are set where the worker runs.
"""

from __future__ import annotations

import socket
import sys
import uuid
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlparse

from greenpipe.errors import UsageError

# what a variant's stages read from the environment of the user who started the sweep
SHIPPED_NAMES = frozenset(
    {
        "MLFLOW_TRACKING_URI",
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES",
        "MLFLOW_HTTP_REQUEST_TIMEOUT",
        "MLFLOW_ALLOW_FILE_STORE",
        "MLFLOW_DISABLE_TELEMETRY",
        "PREFECT_SERVER_ANALYTICS_ENABLED",
        "DO_NOT_TRACK",
        "TF_CPP_MIN_LOG_LEVEL",
        "TORCH_CPP_LOG_LEVEL",
        # who made the experiment commits `dvc exp run` writes
        "GIT_AUTHOR_NAME",
        "GIT_AUTHOR_EMAIL",
        "GIT_COMMITTER_NAME",
        "GIT_COMMITTER_EMAIL",
    }
)
SHIPPED_PREFIXES = ("GREENPIPE_", "CODECARBON_", "DVC_")
# never shipped, even under an allowed prefix: a name with a part that ends in one of these
# (CODECARBON_API_KEY, DVC_STUDIO_TOKEN, GREENPIPE_DB_PASSWORD, ..._AUTH_STRING)
SECRET_WORDS = ("KEY", "TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL", "CREDENTIALS")


def _secret_looking(name: str) -> bool:
    parts = name.upper().split("_")
    return "AUTH" in parts or any(part.endswith(SECRET_WORDS) for part in parts)


def shipped_env(environ: Mapping[str, str]) -> dict[str, str]:
    """The variables of `environ` that travel with a variant to a Dask worker."""
    return {
        k: v
        for k, v in environ.items()
        if (k in SHIPPED_NAMES or k.startswith(SHIPPED_PREFIXES)) and not _secret_looking(k)
    }


def same_machine_id() -> str:
    """This kernel's boot id (shared by containers on one host, which share SQLite locks),
    else the hostname."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return socket.gethostname()


def _reachable(url: str) -> bool:
    parsed = urlparse(url)
    port = parsed.port or {"http": 80, "https": 443}.get(parsed.scheme, 0)
    try:
        with socket.create_connection((parsed.hostname, port), timeout=3):
            return True
    except (OSError, ValueError):
        return False


def probe(root: str, marker: str, urls: list[str]) -> dict:
    """Run on every worker: who it is and what it sees (stdlib only, no Prefect)."""
    repo = Path(root)
    return {
        "host": socket.gethostname(),
        "machine": same_machine_id(),
        "python": sys.executable,
        "repo": (repo / "dvc.yaml").is_file(),
        "marker": (repo / marker).is_file(),
        "dvc": (Path(sys.executable).parent / "dvc").is_file(),
        "unreachable": [u for u in urls if not _reachable(u)],
    }


def scheduler_probe(dask_scheduler=None) -> str:
    """Run on the scheduler: it deserialises the task graph, so it must import the tasks."""
    import greenpipe.flows.sweep  # noqa: F401

    return socket.gethostname()


def local_store(uri: str) -> bool:
    """True for an MLflow store that is a file on one machine (SQLite, file store)."""
    scheme = urlparse(uri).scheme
    return scheme in ("sqlite", "file") or (not scheme and not uri.startswith("databricks"))


def verdict(
    reports: Mapping[str, object], root: Path, uri: str, api: str | None, here: str
) -> str | None:
    """The first problem of the workers' probe reports ({worker address: report or the error
    it raised}) as one line naming the worker and the fix, or None."""
    for addr, rep in sorted(reports.items()):
        if not isinstance(rep, dict):
            return (
                f"Dask worker {addr} cannot run greenpipe's tasks ({type(rep).__name__}: {rep}); "
                "start `dask worker` from the environment greenpipe is installed in"
            )
        who = f"Dask worker {addr} (host {rep['host']})"
        remote = rep["machine"] != here
        if not rep["repo"]:
            return (
                f"{who} does not see the repo at {root} (no dvc.yaml there); mount the repo at "
                "the same path on every worker (a shared filesystem)"
            )
        if not rep["marker"]:
            return (
                f"{who} sees another copy of the repo at {root}, not this one; mount this repo "
                "at the same path on every worker (a shared filesystem), so that every "
                "variant's experiment lands in it"
            )
        if not rep["dvc"]:
            return (
                f"{who} has no dvc beside its Python ({rep['python']}); start `dask worker` "
                "from the environment greenpipe is installed in"
            )
        if remote and local_store(uri):
            return (
                f"{who} runs on another machine and the MLflow store {uri} is a local file; "
                "set MLFLOW_TRACKING_URI to a tracking server every worker reaches "
                "(mlflow server --host 0.0.0.0), or run the workers on this machine"
            )
        if remote and not api:
            return (
                f"{who} runs on another machine and no Prefect server is set; start "
                "`prefect server start --host 0.0.0.0` and export "
                "PREFECT_API_URL=http://<this host>:4200/api"
            )
        if rep["unreachable"]:
            return (
                f"{who} cannot reach {rep['unreachable'][0]}; serve it on an address every "
                "worker reaches (MLFLOW_TRACKING_URI, PREFECT_API_URL)"
            )
    return None


def check_cluster(address: str, root: Path, uri: str, api: str | None) -> int:
    """Check the scheduler and every worker at `address` before any variant runs; raise a
    one-line UsageError naming the first one that cannot take part. Returns the worker count."""
    from distributed import Client

    try:
        client = Client(address, timeout="10s")
    except (OSError, TimeoutError) as exc:
        raise UsageError(
            f"--address {address}: no Dask scheduler answers there ({exc}); start "
            "`dask scheduler` from greenpipe's environment, or fix --address"
        ) from None
    # in DVC's scratch folder (git-ignored), where there is one; deleted before any variant
    scratch = root / ".dvc" / "tmp" if (root / ".dvc").is_dir() else root
    marker = scratch / f".greenpipe-probe-{uuid.uuid4().hex}"
    urls = [u for u in (uri, api) if u and urlparse(u).scheme in ("http", "https")]
    with client:
        try:
            client.run_on_scheduler(scheduler_probe)
        except Exception as exc:
            raise UsageError(
                f"the Dask scheduler at {address} cannot import greenpipe's tasks "
                f"({type(exc).__name__}: {exc}); start `dask scheduler` from the environment "
                "greenpipe is installed in"
            ) from None
        scratch.mkdir(exist_ok=True)
        marker.write_text("greenpipe sweep: is this repo the one every worker sees?\n")
        try:
            reports = client.run(
                probe, str(root), str(marker.relative_to(root)), urls, on_error="return"
            )
        finally:
            marker.unlink(missing_ok=True)
    if not reports:
        raise UsageError(
            f"the Dask scheduler at {address} has no workers; start `dask worker {address}` "
            "from greenpipe's environment on each machine"
        )
    problem = verdict(reports, root, uri, api, same_machine_id())
    if problem:
        raise UsageError(problem)
    return len(reports)
