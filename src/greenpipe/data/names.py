"""The class names file prepare writes beside the data set (data/classes.json in dvc.yaml):
`{"classes": [name of label 0, name of label 1, ...]}`; the stages that show classes (the
confusion plot, the report's per-class table) read it."""

from __future__ import annotations

import json
from pathlib import Path

from greenpipe.errors import DataError


def names_record(classes: list[str]) -> dict[str, list[str]]:
    """What the file holds for these class names (label i is classes[i])."""
    return {"classes": [str(c) for c in classes]}


def read_names(path: str | Path) -> list[str]:
    """The class names in `path` (label i is the i-th)."""
    p = Path(path)
    if not p.is_file():
        raise DataError(
            f"class names file '{p}' not found; run the stage that makes it (dvc repro)"
        )
    try:
        names = json.loads(p.read_text())["classes"]
    except (ValueError, KeyError, TypeError):
        raise DataError(f"'{p}' is not a class names file; re-run prepare (dvc repro)") from None
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise DataError(f"'{p}' must hold a list of names under 'classes'; re-run prepare")
    return names


def check_names(names: list[str], n_labels: int, what: str, path: str | Path) -> None:
    """`names` (read from `path`) must name `n_labels` labels: every class of `what` (a
    model's outputs, a split's labels)."""
    if n_labels > len(names):
        raise DataError(
            f"{what} has {n_labels} classes but '{path}' names {len(names)}; the data set "
            "changed since: re-run the pipeline (dvc repro)"
        )
