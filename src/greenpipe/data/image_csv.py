"""A CSV that lists image files and their labels, as labelling tools export them.

The format (inputs/README.md): UTF-8, a header row naming the columns `path` and `label`
(other columns are ignored, their order is free), one image per row. A relative path is read
from the CSV's own folder and must stay inside it (so that the images sit under inputs/ with
the CSV, where the prepare stage's DVC dependency sees them); an absolute path is taken as
given. Labels are text: if every label is an integer, classes are those integers in numeric
order (named by their decimal form, "07" is "7"); otherwise the distinct labels in sorted
order. A class's index is its position in that order.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import NamedTuple

import numpy as np

from greenpipe.errors import DataError

COLUMNS = ("path", "label")
_INT = re.compile(r"[+-]?\d+")
_HELP = "see inputs/README.md"


class ImageTable(NamedTuple):
    """The rows of an image CSV: resolved file paths, the paths as written, labels (int64
    indices into `classes`), the class names, and each row's line number in the file."""

    files: list[Path]
    written: list[str]
    y: np.ndarray
    classes: list[str]
    lines: list[int]


def _read_frame(csv: Path, name: str):
    import pandas as pd

    if not csv.is_file():
        raise DataError(
            f"data.path '{name}' does not exist; put the CSV (columns path,label) there or "
            f"point data.path at one ({_HELP})"
        )
    try:
        # text as written: no NA guessing (a class named "NA" or "None" stays a class)
        df = pd.read_csv(
            csv, dtype=str, keep_default_na=False, skip_blank_lines=False, skipinitialspace=True
        )
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        why = " ".join(str(exc).split())[:120]
        raise DataError(
            f"'{name}' is not a readable CSV ({why}); export it as UTF-8 CSV with a header "
            f"row path,label ({_HELP})"
        ) from None
    df.columns = [str(c).strip() for c in df.columns]
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise DataError(
            f"'{name}' has no column {', '.join(repr(c) for c in missing)} (its header: "
            f"{', '.join(df.columns) or 'empty'}); the first row must name the columns "
            f"path and label ({_HELP})"
        )
    df = df[list(COLUMNS)].apply(lambda s: s.str.strip())
    df["line"] = np.arange(len(df)) + 2  # the header is line 1
    return df[(df["path"] != "") | (df["label"] != "")]  # blank lines are not rows


def class_names(labels: list[str]) -> tuple[list[str], list[str]]:
    """The class names in class order, and each label's class name: if every label is an
    integer, the integers in numeric order named by their decimal form ("07" is "7"); else
    the distinct texts sorted."""
    if labels and all(_INT.fullmatch(v) for v in labels):
        named = [str(int(v)) for v in labels]
        return [str(v) for v in sorted({int(v) for v in labels})], named
    return sorted(set(labels)), labels


def _resolve(csv: Path, written: str, line: int, name: str) -> Path:
    p = Path(written)
    if p.is_absolute():
        return p
    folder = csv.parent
    full = folder / p
    if os.path.normpath(p).split(os.sep)[0] == os.pardir:
        raise DataError(
            f"'{name}' line {line}: path '{written}' leads outside the CSV's folder; move the "
            f"image under '{folder}' (where DVC tracks it) or give its absolute path"
        )
    return full


def read_table(csv: str | Path, shown: str | None = None) -> ImageTable:
    """The rows of the image CSV at `csv`, checked: both columns present, no empty cell,
    every file present, one label per file, at least two classes. Images are not decoded
    (`load_image_csv` does). Every problem is a one-line DataError naming the CSV (as
    `shown`, e.g. data.path as written, if given) and the line."""
    csv = Path(csv)
    name = shown or str(csv)
    df = _read_frame(csv, name)
    if df.empty:
        raise DataError(f"'{name}' lists no images; add one row path,label per image")
    files, seen = [], {}
    for written, label, line in df.itertuples(index=False):
        for col, value in (("path", written), ("label", label)):
            if not value:
                raise DataError(
                    f"'{name}' line {line}: empty {col}; give every row a path and a label "
                    "or remove the row"
                )
        full = _resolve(csv, written, line, name)
        if not full.is_file():
            raise DataError(
                f"'{name}' line {line}: image '{written}' does not exist (looked for "
                f"'{full}'); fix the path (relative to the CSV's folder) or remove the row"
            )
        first = seen.setdefault(os.path.normpath(full), (line, label))
        if first[1] != label:
            raise DataError(
                f"'{name}' line {line}: '{written}' is labelled '{label}' but line {first[0]} "
                f"labels it '{first[1]}'; keep one label per image"
            )
        files.append(full)
    classes, named = class_names(df["label"].tolist())
    if len(classes) < 2:
        raise DataError(
            f"'{name}' names 1 class ('{classes[0]}'); at least 2 are needed: add rows of "
            "another class"
        )
    index = {c: i for i, c in enumerate(classes)}
    y = np.array([index[n] for n in named], dtype=np.int64)
    return ImageTable(files, df["path"].tolist(), y, classes, df["line"].tolist())


def load_image_csv(
    csv: str | Path, size: int, channels: int, fit: str
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The images the CSV lists as (N, size, size, channels) float32 in [0, 1] (decoded by
    `greenpipe.data.images.read_image`: the mixed sizes and modes rule), labels (N,) int64
    and the class names. A file that cannot be decoded is a DataError naming its line: the
    CSV says that image belongs to the data set."""
    from greenpipe.data.images import read_image

    table, name = read_table(csv), str(csv)
    xs = []
    for full, written, line in zip(table.files, table.written, table.lines, strict=True):
        img = read_image(full, size, channels, fit)
        if img is None:
            raise DataError(
                f"'{name}' line {line}: '{written}' is not a readable image (empty, truncated "
                "or not an image); replace the file or remove the row"
            )
        xs.append(img)
    return np.stack(xs), table.y, table.classes
