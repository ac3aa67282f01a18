"""Log stage run records (greenpipe.tracking.records) to MLflow, from a process that has it open.

Each record becomes its stage's child run under its parent, as the stage itself used to log
it: tags (stage, CodeCarbon mode, process, git commit, library versions, hardware, DVC's hashes
of its deps and outs), its params slice, its energy figures and metrics (also on the parent
as `<stage>/<backend>/<key>`), its energy sources, its artifacts, its status (a record whose
process died RUNNING is KILLED) and its start and end times. A record is logged at most once:
its run carries the record id (`greenpipe.record_id`), and a record whose run already exists
(a logger killed after logging it, before deleting it) is not logged again.

Under plain `dvc repro` the parent is the invocation's (found or created here, FINISHED or
FAILED after each of its records) and its ledger is brought up to date once per batch;
under a flow or sweep the parent is theirs and so is its ledger.

`python -m greenpipe.tracking.recorder <records dir>` is the detached logger: it logs
records as they are ready while there are any, and ends `LINGER_S` after the last one.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from pathlib import Path
from typing import Any

from greenpipe.errors import GreenpipeError
from greenpipe.tracking import dvc_hashes, ledger, records, runs
from greenpipe.tracking import provenance as prov

POLL_S = 0.2
LINGER_S = 5.0


class Stores:
    """Open tracking stores by (URI, experiment): each opened once per process."""

    def __init__(self) -> None:
        self._open: dict[tuple[str, str], runs.Store] = {}
        self._lock = threading.Lock()

    def of(self, rec: dict[str, Any]) -> runs.Store:
        tr = rec["tracking"]
        key = (tr["uri"], rec["experiment"])
        with self._lock:
            if key not in self._open:
                root, artifact_root = Path(rec["root"]), Path(tr["artifact_root"])
                self._open[key] = runs.store_at(tr["uri"], rec["experiment"], artifact_root, root)
            return self._open[key]


STORES = Stores()  # a flow logs its records after every stage: one store open per process


def _logged_run(store: runs.Store, record_id: str) -> tuple[str, str] | None:
    """(run id, parent id) of the run that already logged the record, if one did. A run
    still RUNNING was being logged by a logger that died: it is removed, to be logged again."""
    for run in runs.runs_of_record(store, record_id):
        if run.info.status == "RUNNING":
            store.client.delete_run(run.info.run_id)
            continue
        return run.info.run_id, run.data.tags[runs.TAG_PARENT]
    return None


def _tags(rec: dict[str, Any], parent: str, root: Path) -> dict[str, str]:
    tags = {
        runs.TAG_PARENT: parent,
        runs.TAG_ROLE: "stage",
        runs.TAG_RECORD: rec["record_id"],
        "greenpipe.stage": rec["stage"],
        ledger.TAG_MODE: rec["tracking"]["codecarbon_mode"],
        "mlflow.source.git.commit": rec.get("git_commit", "none"),
        **rec["process"],
    }
    tags.update({f"lib.{k}": v for k, v in prov.library_versions().items()})
    tags.update({f"hw.{k}": str(v) for k, v in prov.hardware().items()})
    if root.is_dir():  # a `dvc exp run --temp` workspace may be gone by now: no hashes then
        tags.update(dvc_hashes.tags(root, rec["stage"], "deps"))
        if rec["status"] == "FINISHED":
            tags.update(dvc_hashes.tags(root, rec["stage"], "outs"))
    return {k: str(v) for k, v in tags.items()}


def status_of(rec: dict[str, Any]) -> str:
    """FINISHED or FAILED as the stage wrote it; KILLED if its process died RUNNING."""
    return "KILLED" if rec["status"] == "RUNNING" else rec["status"]


def _error_of(rec: dict[str, Any]) -> str | None:
    if rec["status"] == "RUNNING":
        return "the stage's process ended without finishing its record (killed)"
    return rec.get("error")


def log_record(store: runs.Store, rec: dict[str, Any], path: Path) -> tuple[str, str]:
    """The record as its stage's child run (see module docstring): (run id, parent id)."""
    client, root = store.client, Path(rec["root"])
    existing = _logged_run(store, rec["record_id"])
    if existing:
        return existing
    hint = {**rec["parent"], "started_at_unix_s": rec["started_at_unix_s"]}
    parent = runs.find_or_create_parent(store, rec["parent_params"], hint)
    start_ms = int(rec["started_at_unix_s"] * 1000)
    run = client.create_run(
        store.exp_id, start_time=start_ms, tags=_tags(rec, parent, root), run_name=rec["stage"]
    )
    run_id = run.info.run_id
    runs.log_params(client, run_id, rec["params"])
    energy = rec.get("energy") or {}
    figures = ledger.figures(energy) if energy else {}
    if rec["status"] == "FINISHED":
        prefixed = ledger.parent_keys(rec["stage"], {**rec["metrics"], "energy": energy})
        runs.log_metrics(client, run_id, {**figures, **prefixed})
        runs.log_metrics(client, parent, prefixed)
        sources = {f"energy.source.{c}": s for c, s in (energy.get("source") or {}).items()}
        runs.set_tags(client, run_id, sources)
        runs.set_tags(client, parent, sources)
    elif figures:
        runs.log_metrics(client, run_id, figures)
    if error := _error_of(rec):
        client.set_tag(run_id, "greenpipe.error", error[:5000])
    kept = [path.with_suffix(".files") / name for name in rec.get("files") or []]
    for file in kept:
        if file.is_file():
            client.log_artifact(run_id, str(file))
    if missing := [f.name for f in kept if not f.is_file()]:  # removed by hand, say which
        client.set_tag(run_id, "greenpipe.artifacts_missing", ",".join(missing)[:5000])
    end_ms = int((rec.get("ended_at_unix_s") or time.time()) * 1000)
    client.set_terminated(run_id, status_of(rec), end_time=end_ms)
    return run_id, parent


def _close_parent(store: runs.Store, parent: str, rec: dict[str, Any]) -> None:
    """An invocation's own parent (no driver set one): its ledger and status after a batch."""
    root = Path(rec["root"])
    if root.is_dir():
        stages = prov.lock_stages(root, rec["backends"])
        ledger.reconcile(store, parent, ledger.workspace_blocks(root, stages))
    failed = status_of(rec) != "FINISHED"
    store.client.set_terminated(parent, "FAILED" if failed else "FINISHED")


def drain_locked(
    folder: Path, stores: Stores | None = None, failed: dict[str, str] | None = None
) -> list[str]:
    """Log every ready record of `folder` and delete it (the caller holds the logger lock);
    the run ids logged. A record that fails to log stays for the next logger: its id and
    error go to `failed` if given, else the first failure is raised after the rest."""
    stores = stores or STORES
    logged, owned, errors = [], {}, {}
    for path, rec in records.pending(folder):
        if not records.ready(rec):
            continue
        if rec["status"] == "RUNNING":  # its process is gone: read what it wrote last (it may
            rec = records.read(path)  # have finished its record after the read above)
            if rec is None:
                continue
        try:
            store = stores.of(rec)
            run_id, parent = log_record(store, rec, path)
        except Exception as exc:  # the tracking store failed: keep the record
            errors[rec["record_id"]] = exc
            continue
        records.remove(path)
        logged.append(run_id)
        if not (rec.get("parent") or {}).get("run_id"):
            owned[parent] = (store, rec)
    for parent, (store, rec) in owned.items():
        _close_parent(store, parent, rec)
    if failed is not None:
        failed.update({k: f"{type(e).__name__}: {e}" for k, e in errors.items()})
    elif errors:
        raise next(iter(errors.values()))
    return logged


def drain_if_free(folder: Path, failed: dict[str, str] | None = None) -> list[str]:
    """drain_locked unless a detached logger holds the folder (it logs them itself)."""
    if not folder.is_dir():
        return []
    with records.logger_lock(folder, wait=False) as mine:
        return drain_locked(folder, STORES, failed) if mine else []


def flush(folder: Path, parent: str | None = None, timeout_s: float = 600.0) -> list[str]:
    """Log the ready records of `folder` now (those of stages that ended or died); while a
    detached logger holds the folder, wait instead until it has logged the ready records of
    `parent` (every parent's, without one)."""
    deadline = time.monotonic() + timeout_s
    while folder.is_dir():  # no folder: no stage has written a record here
        with records.logger_lock(folder, wait=False) as mine:
            if mine:
                return drain_locked(folder)
        left = [  # a stage still running is not waited for: its record is not ready
            r
            for _, r in records.pending(folder)
            if records.ready(r) and parent in (None, (r.get("parent") or {}).get("run_id"))
        ]
        if not left:
            return []
        if time.monotonic() > deadline:
            raise GreenpipeError(
                f"{len(left)} stage record(s) in {folder} not logged to MLflow after "
                f"{timeout_s:.0f} s; see {folder / records.LOG} (they are logged at the next start)"
            )
        time.sleep(POLL_S)
    return []


class Pump:
    """Log a folder's records from a thread of this process as they become ready (every
    `POLL_S`), so that a flow's stages do not wait for their runs to be logged: the logging
    overlaps the next stage. `close()` stops it and logs what is left (waiting for a detached
    logger that holds the folder), raising if a record could not be logged."""

    def __init__(self, folder: Path, interval_s: float = POLL_S) -> None:
        self.folder, self.failed = folder, {}
        self._stop = threading.Event()
        self._interval = interval_s
        self._thread = threading.Thread(target=self._run, name="greenpipe-records", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            drain_if_free(self.folder, self.failed)

    def __enter__(self) -> Pump:
        self._thread.start()
        return self

    def close(self) -> list[str]:
        self._stop.set()
        self._thread.join()
        return flush(self.folder)

    def __exit__(self, *exc: object) -> None:
        self.close()


def _serve_locked(folder: Path, linger_s: float, failed: dict[str, str]) -> None:
    stores, quiet_since = Stores(), time.monotonic()
    while time.monotonic() - quiet_since < linger_s:
        before, logged = dict(failed), []
        try:
            logged = drain_locked(folder, stores, failed)
        except Exception as exc:  # closing a parent failed: its records are logged, go on
            print(f"greenpipe recorder: {type(exc).__name__}: {exc}", file=sys.stderr)
            time.sleep(1.0)
        for rid in failed.keys() - before.keys():
            print(f"greenpipe recorder: record {rid} not logged: {failed[rid]}", file=sys.stderr)
        running = [r for _, r in records.pending(folder) if not records.ready(r)]
        if logged or running:
            quiet_since = time.monotonic()
        time.sleep(POLL_S)


def serve(folder: Path, linger_s: float = LINGER_S) -> None:
    """The detached logger: hold the folder, log records as they are ready, end `linger_s`
    after none is running or newly logged (a record the tracking store refuses stays, for
    the next start). After letting go it looks once more: a record written while it was
    ending (whose stage saw the folder held) makes it go on."""
    failed: dict[str, str] = {}
    while True:
        with records.logger_lock(folder, wait=False) as mine:
            if not mine:
                return  # another logger holds the folder: it sees what this one would
            _serve_locked(folder, linger_s, failed)
        if all(r["record_id"] in failed for _, r in records.pending(folder)):
            return


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    with contextlib.suppress(KeyboardInterrupt):
        serve(Path(argv[0]))


if __name__ == "__main__":
    main()
