"""The experiment ids a tracking store gave, remembered in the repo (.dvc/tmp/), so that a
`greenpipe run` with nothing to do prints the experiment's MLflow link without importing
MLflow and opening its store (about 3 s on 2 cores, more than the rest of such a run).

Only a hint: an entry is used only for the same tracking URI and experiment name, and for a
SQLite store only while the database file is the one the entry was made with (same inode,
so a deleted and re-created mlflow.db is not mistaken for the old one).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from greenpipe.artifacts import read_json, write_json

FILE = Path(".dvc") / "tmp" / "greenpipe-experiments.json"


def _db_identity(uri: str) -> int | None:
    """The SQLite database file's inode, None for any other store (or no file yet)."""
    prefix = "sqlite:///"
    if not uri.startswith(prefix):
        return None
    with contextlib.suppress(OSError):
        return os.stat(uri[len(prefix) :]).st_ino
    return None


def _key(uri: str, name: str) -> str:
    return f"{uri} {name}"


def remember(root: Path, uri: str, name: str, exp_id: str) -> None:
    """Note the experiment's id (nothing is written where root has no .dvc/)."""
    path = root / FILE
    if not path.parent.parent.is_dir():
        return
    known = recall_all(root)
    entry = {"experiment_id": exp_id, "db": _db_identity(uri)}
    if known.get(_key(uri, name)) != entry:
        with contextlib.suppress(OSError):  # a hint: never fail a run over it
            write_json(path, {**known, _key(uri, name): entry})


def recall_all(root: Path) -> dict:
    with contextlib.suppress(OSError, ValueError):
        known = read_json(root / FILE)
        if isinstance(known, dict):
            return known
    return {}


def recall(root: Path, uri: str, name: str) -> str | None:
    """The experiment id remembered for this store and name, if it still holds."""
    entry = recall_all(root).get(_key(uri, name))
    if not isinstance(entry, dict) or entry.get("db") != _db_identity(uri):
        return None
    return entry.get("experiment_id")
