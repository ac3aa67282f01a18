"""Atomic file writing and the on-disk formats shared by the stage entry points.

Every output is written to a temporary name in the same folder and renamed, so a killed
stage never leaves a half file that looks finished.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from greenpipe import liveness
from greenpipe.errors import DataError

SPLITS = ("train", "val", "test")
_UMASK = os.umask(0)
os.umask(_UMASK)


_OUTPUT_ROOT: Path | None = None  # set only inside `outputs_inside`


@contextlib.contextmanager
def outputs_inside(root: str | Path) -> Iterator[Path]:
    """Inside the block, refuse to write outside `root` (resolved, yielded); as before after
    it. The stage entry points run their main() in it, with the repo (entry.main_of)."""
    global _OUTPUT_ROOT
    before, _OUTPUT_ROOT = _OUTPUT_ROOT, Path(root).resolve()
    try:
        yield _OUTPUT_ROOT
    finally:
        _OUTPUT_ROOT = before


def _check_inside(dest: Path) -> None:
    if _OUTPUT_ROOT is not None and not dest.resolve().is_relative_to(_OUTPUT_ROOT):
        from greenpipe.errors import UsageError

        raise UsageError(
            f"output path '{dest}' is outside the repo {_OUTPUT_ROOT}; "
            "stages write only inside the repo (fix the path in dvc.yaml)"
        )


def remove_abandoned(dest: Path) -> list[Path]:
    """Remove the temporary files of `dest` whose writer is gone (a killed run: never renamed,
    never "finished"). A live writer's file, in this process or another, is left alone, and
    so is a temporary file whose writer cannot be told (another machine or container)."""
    own = re.compile(
        rf"\.{re.escape(dest.stem)}\.({liveness.TOKEN})\.[^.]+\.tmp{re.escape(dest.suffix)}"
    )
    removed = []
    for path in dest.parent.iterdir():
        m = own.fullmatch(path.name)
        if m and liveness.token_gone(m.group(1)):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds."""
    dest = Path(path)
    _check_inside(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    remove_abandoned(dest)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{dest.stem}.{liveness.token()}.", suffix=f".tmp{dest.suffix}", dir=dest.parent
    )
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; outputs get the usual mode
    try:
        yield Path(tmp)
        os.replace(tmp, dest)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | Path, text: str) -> None:
    write_bytes(path, text.encode())


def write_json(path: str | Path, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=float) + "\n")


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text())


def save_splits(path: str | Path, splits: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
    """Write {split: (x, y)} as one uncompressed npz with keys x_<split>, y_<split>."""
    arrays = {}
    for name, (x, y) in splits.items():
        arrays[f"x_{name}"], arrays[f"y_{name}"] = x, y
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    write_bytes(path, buf.getvalue())


def load_splits(path: str | Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Read an npz written by `save_splits` (or a compressed container) into {split: (x, y)}."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"data file '{p}' not found; run the stage that makes it (dvc repro)")
    try:
        with np.load(p, allow_pickle=False) as z:
            files = z.files
            missing = [f"{k}_{s}" for s in SPLITS for k in "xy" if f"{k}_{s}" not in files]
            if missing:
                raise DataError(f"'{p}' lacks arrays {missing}; re-run the stage that writes it")
            return {s: (z[f"x_{s}"], z[f"y_{s}"]) for s in SPLITS}
    except (ValueError, OSError, zipfile.BadZipFile, AttributeError):
        raise DataError(f"'{p}' is not a readable npz; re-run the stage that writes it") from None


def write_curves(path: str | Path, rows: list[dict[str, float]]) -> None:
    """Per-epoch curves as CSV (one row per epoch), for `dvc plots`."""
    if not rows:
        write_text(path, "epoch\n")
        return
    cols = list(rows[0])
    lines = [",".join(cols)] + [",".join(f"{r[c]:.6g}" for c in cols) for r in rows]
    write_text(path, "\n".join(lines) + "\n")


def load_dataset(path: str | Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The compressed data set (compress stage output, any codec) as float32 splits in [0, 1]
    at the original resolution."""
    from greenpipe.data.compress import load_container

    return load_container(path, SPLITS)


SKIPPED_KEY = "greenpipe_not_made"  # a model file that holds only why the model was not made


def write_skipped(path: str | Path, reason: str) -> None:
    """Stand in for a model an optimization could not make: DVC needs the declared output,
    and later stages and the report read the reason from it."""
    write_json(path, {SKIPPED_KEY: reason})


def skipped_reason(path: str | Path) -> str | None:
    """The reason in a `write_skipped` marker, or None for a real model file."""
    with open(path, "rb") as f:
        head = f.read(len(SKIPPED_KEY) + 8)
    if SKIPPED_KEY.encode() not in head:
        return None
    return read_json(path)[SKIPPED_KEY]


def save_model(backend: Any, model: Any, path: str | Path) -> int:
    """Save atomically through the backend; returns the file size in bytes."""
    with atomic_path(path) as tmp:
        backend.save(model, tmp)
    return Path(path).stat().st_size
