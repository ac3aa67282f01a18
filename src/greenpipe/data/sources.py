"""Where samples come from: scikit-learn's bundled digits, an npz with arrays x and y (and
optionally classes), a folder of images with one subfolder per class, or a CSV of image paths
and labels (greenpipe.data.image_csv). Every source also names its classes."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import NamedTuple

import numpy as np

from greenpipe.data.images import read_image
from greenpipe.errors import DataError

DIGIT_CLASSES = [str(d) for d in range(10)]


class Loaded(NamedTuple):
    """A source's samples (N, H, W, C) float32 in [0, 1], labels (N,) int64, the class
    names (label i is classes[i]) and the files skipped as unreadable (image folders)."""

    x: np.ndarray
    y: np.ndarray
    classes: list[str]
    skipped: list[str]


def load_digits_images() -> tuple[np.ndarray, np.ndarray]:
    """The 1,797 8x8 handwritten digits shipped with scikit-learn, as (N, 8, 8, 1) in [0, 1]."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[..., None]
    return x, d.target.astype(np.int64)


def load_npz_images(path: str | Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Arrays `x` (N, H, W[, C]) and `y` (N,) from an npz, and the class names: its optional
    string array `classes` (label i is classes[i]), else "0", "1", ... up to max(y). x is
    scaled to [0, 1] if it is uint8."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"data.path '{p}' does not exist; point data.path at an npz with x and y")
    try:
        with np.load(p, allow_pickle=False) as z:
            if "x" not in z.files or "y" not in z.files:
                raise DataError(f"'{p}' must hold arrays named x and y (found {z.files})")
            x, y = z["x"], z["y"]
            names = _npz_classes(p, z) if "classes" in z.files else None
    except (ValueError, OSError, zipfile.BadZipFile, AttributeError):
        raise DataError(
            f"data.path '{p}' is not a readable npz; point it at an npz with arrays x and y"
        ) from None
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4 or len(x) != len(y):
        raise DataError(
            f"'{p}': x must be (N, H, W[, C]) with N == len(y); got {x.shape}, {y.shape}"
        )
    y = y.astype(np.int64)
    if len(y) and y.min() < 0:
        raise DataError(f"'{p}': labels y must be integers >= 0 (found {int(y.min())})")
    top = int(y.max()) + 1 if len(y) else 0
    if names is not None and len(names) < top:
        raise DataError(
            f"'{p}': classes names {len(names)} class(es) but y goes up to {top - 1}; give "
            "one name per label 0..max(y)"
        )
    x = x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x.astype(np.float32)
    return x, y, names if names is not None else [str(i) for i in range(top)]


def _npz_classes(p: Path, z) -> list[str]:
    """The npz's `classes`: a 1-D array of distinct names (str, bytes or integers)."""
    try:
        arr = z["classes"]
    except ValueError:  # an object array needs pickle, which is never loaded
        raise DataError(
            f"'{p}': classes is an object array; save it as strings, e.g. np.array(['cat', 'dog'])"
        ) from None
    if arr.ndim != 1 or arr.dtype.kind not in "USiu":
        raise DataError(f"'{p}': classes must be a 1-D array of names (got {arr.dtype}{arr.shape})")
    names = [v.decode() if isinstance(v, bytes) else str(v) for v in arr.tolist()]
    if len(set(names)) != len(names):
        raise DataError(f"'{p}': classes names a class twice ({names}); give distinct names")
    return names


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def check_source(source: str, path: str | None, root: Path) -> None:
    """Fail fast, before any stage or flow starts, if data.path cannot be what data.source
    needs: an npz file, a folder with at least two class subfolders, or an image CSV whose
    rows all name existing files of at least two classes (relative paths are under the repo
    `root`). The images themselves are decoded by prepare."""
    if source == "digits" or path is None:
        return
    p = Path(path) if Path(path).is_absolute() else root / path
    if source == "npz" and not p.is_file():
        raise DataError(
            f"data.path '{path}' does not exist; put the npz (arrays x and y) there or "
            "point data.path at one (see inputs/README.md)"
        )
    if source == "csv":
        from greenpipe.data.image_csv import read_table

        read_table(p, shown=path)
    if source == "image_folder":
        if not p.is_dir():
            raise DataError(
                f"data.path '{path}' is not a folder; give a folder with one subfolder of "
                "images per class (see inputs/README.md)"
            )
        _class_dirs(p)


def upscaled(x: np.ndarray, factor: int) -> np.ndarray:
    """(N, H, W, C) images enlarged `factor` times per side by bilinear interpolation (values
    stay within the originals' range)."""
    if factor == 1:
        return x
    from scipy.ndimage import zoom

    return zoom(x, (1, factor, factor, 1), order=1, grid_mode=True, mode="nearest").astype(x.dtype)


def load_source(cfg) -> Loaded:
    """The samples, labels and class names data.source and data.path name (a DataConfig);
    relative paths are read from the working directory (the repo root under DVC)."""
    if cfg.source == "digits":
        x, y = load_digits_images()
        return Loaded(upscaled(x, cfg.upscale), y, DIGIT_CLASSES, [])
    if cfg.source == "npz":
        x, y, names = load_npz_images(cfg.path)
        return Loaded(upscaled(x, cfg.upscale), y, names, [])
    if cfg.source == "csv":
        from greenpipe.data.image_csv import load_image_csv

        return Loaded(*load_image_csv(cfg.path, cfg.image_size, cfg.channels, cfg.fit), [])
    return Loaded(*load_image_folder(cfg.path, cfg.image_size, cfg.channels, cfg.fit))


def _class_dirs(root: Path) -> list[Path]:
    if not root.is_dir():
        raise DataError(f"data.path '{root}' is not a folder; give a folder of class subfolders")
    dirs = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if len(dirs) < 2:
        raise DataError(f"'{root}' has {len(dirs)} class folder(s); at least 2 are needed")
    return dirs


def load_image_folder(
    path: str | Path, size: int, channels: int, fit: str = "stretch"
) -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    """Images under `path/<class>/*.png|jpg|jpeg` as (N, size, size, channels) float32 in
    [0, 1] (decoded by `greenpipe.data.images.read_image`: the mixed sizes and modes rule),
    labels (N,) int64 by sorted class name, the class names, and the skipped files.

    Unreadable or truncated files are skipped (returned, never raised); an empty class folder
    or a class with no readable image is a DataError.
    """
    root = Path(path)
    xs, ys, skipped = [], [], []
    dirs = _class_dirs(root)
    for label, d in enumerate(dirs):
        files = sorted(f for f in d.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise DataError(f"class folder '{d}' has no PNG or JPEG image; fill or remove it")
        n_before = len(xs)
        for f in files:
            img = read_image(f, size, channels, fit)
            if img is None:
                skipped.append(str(f.relative_to(root)))
            else:
                xs.append(img)
                ys.append(label)
        if len(xs) == n_before:
            raise DataError(f"class folder '{d}' has no readable image ({len(files)} skipped)")
    return np.stack(xs), np.array(ys, dtype=np.int64), [d.name for d in dirs], skipped


def stratified_split(
    x: np.ndarray,
    y: np.ndarray,
    val_fraction: float,
    test_fraction: float,
    seed: int,
    names: list[str] | None = None,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Split into train/val/test with the class proportions kept in each, reproducibly by seed.
    `names` (label i is names[i]) only makes the errors name the class."""
    classes, counts = np.unique(y, return_counts=True)
    if len(classes) < 2:
        raise DataError(f"the data set has {len(classes)} class(es); at least 2 are needed")
    if counts.min() < 3:
        worst = int(classes[counts.argmin()])
        label = f"'{names[worst]}' (label {worst})" if names else str(worst)
        raise DataError(
            f"class {label} has {counts.min()} sample(s); each class needs >= 3 (add images "
            "of it or remove it)"
        )
    # imported here: `greenpipe run` checks data.path through this module before any flow
    # starts, and scikit-learn's import (about 1.7 s) would delay every run, a cached one too
    from sklearn.model_selection import train_test_split

    x_rest, x_test, y_rest, y_test = train_test_split(
        x, y, test_size=test_fraction, stratify=y, random_state=seed
    )
    val_of_rest = val_fraction / (1.0 - test_fraction)
    x_train, x_val, y_train, y_val = train_test_split(
        x_rest, y_rest, test_size=val_of_rest, stratify=y_rest, random_state=seed + 1
    )
    return {"train": (x_train, y_train), "val": (x_val, y_val), "test": (x_test, y_test)}
