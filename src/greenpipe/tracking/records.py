"""Stage run records: what a stage's MLflow run will hold, written by the stage as a file.

A stage process does not import MLflow (about 4 s of every stage: its import and its
SQLAlchemy store's open). It writes its run record, `<records dir>/<record id>.json`, with
everything its run needs: the stage, its process, its parent (the flow's or sweep's run
id, or the `dvc repro` / `dvc exp run` process it runs under), its params, its metrics and
energy block, its status and error, and copies of its artifacts (`<record id>.files/`). The
record is written atomically when the stage starts (status RUNNING) and again when it ends
(FINISHED or FAILED), so a SIGKILLed stage leaves a RUNNING record whose process is gone.

A process that has MLflow open logs the records and deletes them
(greenpipe.tracking.recorder): the Prefect flow after each stage, or, under plain
`dvc repro` / `dvc exp run` or a stage run by hand, one detached logger that the first stage
starts and that ends once the processes it serves are gone. Only one process logs a records
folder at a time (an exclusive lock on `logger.lock`); a record not yet logged when anything
was killed is logged by the next logger, at the next start.

The folder is the DVC repo's (`$DVC_ROOT`, which DVC sets for every stage: the parent repo's
for `dvc exp run --temp`, whose workspace is deleted after it) `.dvc/tmp/greenpipe/records`.
Nothing here imports MLflow.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from greenpipe import liveness

RECORDS = Path(".dvc") / "tmp" / "greenpipe" / "records"
LOCK = "logger.lock"
LOG = "logger.log"
# set by a driver that logs the records itself (the flow: its pid): stages start no logger
LOGGED_BY_ENV = "GREENPIPE_RECORDS_LOGGED_BY"
VERSION = 1


def folder(root: Path, env: dict[str, str] | None = None) -> Path:
    """The records folder of the DVC repo the stage runs in ($DVC_ROOT, else root)."""
    env = os.environ if env is None else env
    return Path(env.get("DVC_ROOT") or root).resolve() / RECORDS


def new_id() -> str:
    return uuid.uuid4().hex


def write(records: Path, record: dict[str, Any]) -> Path:
    """Write the record atomically (a temporary file renamed onto `<id>.json`)."""
    records.mkdir(parents=True, exist_ok=True)
    dest = records / f"{record['record_id']}.json"
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.stem}.", suffix=".tmp", dir=records)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(record, f, sort_keys=True, default=float)
        os.replace(tmp, dest)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return dest


def keep_files(records: Path, record_id: str, paths: list[Path]) -> list[str]:
    """Copy the stage's artifacts beside its record (the workspace may be gone, or the files
    rewritten, by the time the record is logged); their copies' names, in order."""
    dest = records / f"{record_id}.files"
    kept = []
    for i, path in enumerate(p for p in paths if Path(p).is_file()):
        dest.mkdir(parents=True, exist_ok=True)
        target = dest / f"{i:03d}-{Path(path).name}"
        shutil.copyfile(path, target)
        kept.append(target.name)
    return kept


def read(path: Path) -> dict[str, Any] | None:
    """A record as it is on disk now, or None if it is gone (logged) or unreadable."""
    with contextlib.suppress(OSError, ValueError):
        return json.loads(path.read_text())
    return None


def pending(records: Path) -> list[tuple[Path, dict[str, Any]]]:
    """The records not yet logged, oldest first; unreadable ones (being renamed) skipped."""
    out = []
    with contextlib.suppress(FileNotFoundError):
        out = [(path, read(path)) for path in records.glob("*.json")]
    out = [(path, rec) for path, rec in out if rec is not None]
    return sorted(out, key=lambda item: (item[1].get("started_at_unix_s", 0), item[0].name))


def owner_gone(record: dict[str, Any]) -> bool:
    """The stage process that wrote the record (its `process` tags: machine, pid, start) is
    certainly gone (greenpipe.liveness.gone)."""
    proc = record.get("process") or {}
    pid, started = str(proc.get("greenpipe.pid", "")), proc.get("greenpipe.pid_started")
    if not pid.isdigit():
        return False
    return liveness.gone(proc.get("greenpipe.machine"), int(pid), float(started or 0) or None)


def ready(record: dict[str, Any]) -> bool:
    """Whether the record can be logged: its stage ended, or its process is gone (KILLED)."""
    return record.get("status") != "RUNNING" or owner_gone(record)


def remove(path: Path) -> None:
    """Forget a logged record and its kept files."""
    shutil.rmtree(path.with_suffix(".files"), ignore_errors=True)
    path.unlink(missing_ok=True)


@contextlib.contextmanager
def logger_lock(records: Path, wait: bool = True) -> Iterator[bool]:
    """Hold the records folder's logger lock for the block; yields False (without waiting)
    if `wait` is off and another process holds it. The kernel drops it when its holder dies."""
    records.mkdir(parents=True, exist_ok=True)
    with open(records / LOCK, "a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def logger_running(records: Path) -> bool:
    with logger_lock(records, wait=False) as free:
        return not free


def logged_elsewhere(env: dict[str, str] | None = None) -> bool:
    """A live driver (the flow that started this stage) logs the records itself."""
    env = os.environ if env is None else env
    pid = env.get(LOGGED_BY_ENV, "")
    if not pid.isdigit():
        return False
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(int(pid), 0)
        return True
    return False


def ensure_logger(records: Path) -> bool:
    """Start the detached logger (`python -m greenpipe.tracking.recorder <records>`) unless
    one runs or the driver logs the records itself; True if one was started. It runs in a
    session of its own, so that it outlives the stage and DVC's signals to it."""
    if logged_elsewhere() or logger_running(records):
        return False
    with open(records / LOG, "a") as log:
        subprocess.Popen(
            [sys.executable, "-m", "greenpipe.tracking.recorder", str(records)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            # not the stage's folder: a `dvc exp run --temp` workspace is deleted while the
            # logger runs on, and a working directory that is gone fails MLflow's path calls
            cwd=records,
            start_new_session=True,
            close_fds=True,
        )
    return True


def started(record_id: str, stage: str, **fields: Any) -> dict[str, Any]:
    """A new record: RUNNING, now, this process (see module docstring for the fields)."""
    return {
        "version": VERSION,
        "record_id": record_id,
        "stage": stage,
        "status": "RUNNING",
        "started_at_unix_s": time.time(),
        **fields,
    }
