"""Where samples come from: scikit-learn's bundled digits, an npz with arrays x and y, or a
folder of images with one subfolder per class."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
from sklearn.model_selection import train_test_split

from greenpipe.errors import DataError


def load_digits_images() -> tuple[np.ndarray, np.ndarray]:
    """The 1,797 8x8 handwritten digits shipped with scikit-learn, as (N, 8, 8, 1) in [0, 1]."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[..., None]
    return x, d.target.astype(np.int64)


def load_npz_images(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Arrays `x` (N, H, W[, C]) and `y` (N,) from an npz; x is scaled to [0, 1] if it is uint8."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"data.path '{p}' does not exist; point data.path at an npz with x and y")
    try:
        with np.load(p, allow_pickle=False) as z:
            if "x" not in z.files or "y" not in z.files:
                raise DataError(f"'{p}' must hold arrays named x and y (found {z.files})")
            x, y = z["x"], z["y"]
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
    x = x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x.astype(np.float32)
    return x, y.astype(np.int64)


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def check_source(source: str, path: str | None, root: Path) -> None:
    """Fail fast, before any stage or flow starts, if data.path cannot be what data.source
    needs: an npz file, or a folder with at least two class subfolders (relative paths
    are under the repo `root`). The contents are checked by prepare itself."""
    if source == "digits" or path is None:
        return
    p = Path(path) if Path(path).is_absolute() else root / path
    if source == "npz" and not p.is_file():
        raise DataError(
            f"data.path '{path}' does not exist; put the npz (arrays x and y) there or "
            "point data.path at one (see inputs/README.md)"
        )
    if source == "image_folder":
        if not p.is_dir():
            raise DataError(
                f"data.path '{path}' is not a folder; give a folder with one subfolder of "
                "images per class (see inputs/README.md)"
            )
        _class_dirs(p)


def read_image(path: Path, size: int, channels: int) -> np.ndarray | None:
    """One image as float32 (size, size, channels) in [0, 1], or None if it cannot be decoded
    (unreadable, truncated or not an image)."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            im.load()  # decodes fully: a truncated file raises here, not later
            im = im.convert("L" if channels == 1 else "RGB")
            im = im.resize((size, size), Image.Resampling.BILINEAR)
            arr = np.asarray(im, dtype=np.float32) / 255.0
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None
    return arr.reshape(size, size, channels)


def _class_dirs(root: Path) -> list[Path]:
    if not root.is_dir():
        raise DataError(f"data.path '{root}' is not a folder; give a folder of class subfolders")
    dirs = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if len(dirs) < 2:
        raise DataError(f"'{root}' has {len(dirs)} class folder(s); at least 2 are needed")
    return dirs


def load_image_folder(
    path: str | Path, size: int, channels: int
) -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    """Images under `path/<class>/*.png|jpg|jpeg` as (N, size, size, channels) float32 in
    [0, 1], labels (N,) int64 by sorted class name, the class names, and the skipped files.

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
            img = read_image(f, size, channels)
            if img is None:
                skipped.append(str(f.relative_to(root)))
            else:
                xs.append(img)
                ys.append(label)
        if len(xs) == n_before:
            raise DataError(f"class folder '{d}' has no readable image ({len(files)} skipped)")
    return np.stack(xs), np.array(ys, dtype=np.int64), [d.name for d in dirs], skipped


def stratified_split(
    x: np.ndarray, y: np.ndarray, val_fraction: float, test_fraction: float, seed: int
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Split into train/val/test with the class proportions kept in each, reproducibly by seed."""
    classes, counts = np.unique(y, return_counts=True)
    if len(classes) < 2:
        raise DataError(f"the data set has {len(classes)} class(es); at least 2 are needed")
    if counts.min() < 3:
        raise DataError(
            f"class {classes[counts.argmin()]} has {counts.min()} sample(s); each class needs >= 3"
        )
    x_rest, x_test, y_rest, y_test = train_test_split(
        x, y, test_size=test_fraction, stratify=y, random_state=seed
    )
    val_of_rest = val_fraction / (1.0 - test_fraction)
    x_train, x_val, y_train, y_val = train_test_split(
        x_rest, y_rest, test_size=val_of_rest, stratify=y_rest, random_state=seed + 1
    )
    return {"train": (x_train, y_train), "val": (x_val, y_val), "test": (x_test, y_test)}
