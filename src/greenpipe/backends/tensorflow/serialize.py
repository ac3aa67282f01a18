"""Byte-reproducible `.keras` files.

Keras writes the save time into the archive (`metadata.json` "date_saved" and the zip entry
times) and the Python `id()` of objects shared between layers into `config.json`
("shared_object_id"), so saving the same weights twice gives different bytes and DVC would see
a changed output. Keras ignores the first two on load and uses the ids only to match shared
objects within one file; here the times are fixed and the ids renumbered 1, 2, ... in order of
appearance, so the file is a function of the model alone.
"""

from __future__ import annotations

import json
import warnings
import zipfile
from pathlib import Path
from typing import Any

import keras

EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can hold
META_ENTRY = "greenpipe.json"  # the model's `.meta`, an extra archive entry Keras ignores


def save_keras(model: keras.Model, path: Path) -> None:
    """`model.save(path)` (a `.keras` archive), then normalise it to reproducible bytes and
    add the model's `.meta`."""
    with warnings.catch_warnings():
        # Keras 3.15 converts variables with np.array(x), which NumPy 2 flags; harmless here.
        warnings.filterwarnings("ignore", "__array__ implementation", DeprecationWarning)
        model.save(path)
    with zipfile.ZipFile(path) as zf:
        entries = [(info, zf.read(info)) for info in zf.infolist()]
    with zipfile.ZipFile(path, "w") as zf:
        for info, data in entries:
            if info.filename == "metadata.json":
                meta = json.loads(data)
                meta.pop("date_saved", None)
                data = json.dumps(meta).encode()
            elif info.filename == "config.json":
                data = json.dumps(_renumber(json.loads(data), {})).encode()
            fixed = zipfile.ZipInfo(info.filename, date_time=EPOCH)
            fixed.compress_type, fixed.external_attr = info.compress_type, info.external_attr
            zf.writestr(fixed, data)
        fixed = zipfile.ZipInfo(META_ENTRY, date_time=EPOCH)
        fixed.compress_type = zipfile.ZIP_DEFLATED
        zf.writestr(fixed, json.dumps(model.meta, sort_keys=True))


def read_meta(path: Path) -> dict[str, Any] | None:
    """The `.meta` stored in a `.keras` archive by `save_keras`, or None."""
    with zipfile.ZipFile(path) as zf:
        if META_ENTRY not in zf.namelist():
            return None
        return json.loads(zf.read(META_ENTRY))


def _renumber(node: Any, ids: dict[int, int]) -> Any:
    """`node` with every "shared_object_id" mapped to its order of first appearance."""
    if isinstance(node, dict):
        return {
            k: ids.setdefault(v, len(ids) + 1) if k == "shared_object_id" else _renumber(v, ids)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_renumber(v, ids) for v in node]
    return node
