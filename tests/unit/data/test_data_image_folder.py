"""An image-folder data set with planted problems: the loader and the clean stage's library
functions must find >= 90% of each planted kind with <= 5% false positives.

Train folder: 4 classes x 60 base images (PNG grayscale 16x16 and RGB JPEG 20x20), plus planted
corrupt files, exact duplicates, near duplicates (brighter + noise), copies of val/test images
(exact and near: leakage) and images of one class filed under another (flipped labels).
Val and test come from their own clean folders.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from greenpipe.config import CleanConfig
from greenpipe.data.clean import audit_splits, clean_splits, count_reasons
from greenpipe.data.sources import IMAGE_SUFFIXES, load_image_folder
from greenpipe.errors import DataError

CLASSES = ("circle", "cross", "square", "stripe")
SIZE, N_BASE, N_PLANT = 16, 60, 12


def _picture(rng: np.random.Generator, label: int) -> np.ndarray:
    """A smooth random background (drives the perceptual hash apart) and a fine 6x6
    checkerboard in the class's quadrant (what the classifier learns; too fine for the
    hash), uint8 16x16."""
    low = rng.random((8, 8))
    img = 0.25 + np.kron(low, np.ones((2, 2))) * 0.5 + rng.normal(0, 0.02, (SIZE, SIZE))
    r, c = divmod(label, 2)
    checker = np.where(np.add.outer(np.arange(6), np.arange(6)) % 2, 0.22, -0.22)
    img[1 + 8 * r : 7 + 8 * r, 1 + 8 * c : 7 + 8 * c] += checker
    return (np.clip(img, 0, 1) * 255).round().astype(np.uint8)


def _near(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A look-alike: a little brighter with a little noise."""
    out = img.astype(np.float64) + 8 + rng.normal(0, 3, img.shape)
    return np.clip(out, 0, 255).round().astype(np.uint8)


def _save(path, img: np.ndarray, jpeg: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.fromarray(img, mode="L")
    if jpeg:  # RGB, another size: the loader converts and resizes
        im.convert("RGB").resize((20, 20), Image.Resampling.BILINEAR).save(path, quality=95)
    else:
        im.save(path)


def _clean_folder(root, rng, per_class: int) -> list[np.ndarray]:
    imgs = []
    for label, cls in enumerate(CLASSES):
        for i in range(per_class):
            imgs.append(_picture(rng, label))
            _save(root / cls / f"base_{i:03d}.png", imgs[-1])
    return imgs


def _plant(root, rng, held_out: list[np.ndarray]) -> None:
    """Base images and every planted kind; the file name prefix records the kind."""
    base = {cls: [] for cls in CLASSES}
    for label, cls in enumerate(CLASSES):
        for i in range(N_BASE):
            img = _picture(rng, label)
            base[cls].append(img)
            jpeg = i % 4 == 3 and i > N_PLANT + 1  # planted copies use the first PNGs
            _save(root / cls / f"base_{i:03d}.{'jpg' if jpeg else 'png'}", img, jpeg)
    for k in range(N_PLANT):
        cls = CLASSES[k % 4]
        src = root / cls / f"base_{k:03d}.png"
        data = src.read_bytes()
        bad = data[: len(data) // 2] if k % 2 else rng.bytes(200)  # truncated or garbage
        (root / cls / f"corrupt_{k:03d}.png").write_bytes(bad)
        (root / cls / f"dup_{k:03d}.png").write_bytes(src.read_bytes())
        _save(root / cls / f"near_{k:03d}.png", _near(base[cls][k + 1], rng))
        leaked = held_out[(k * 7) % len(held_out)]
        _save(root / cls / f"leak_{k:03d}.png", leaked if k % 2 else _near(leaked, rng))
        wrong = CLASSES[(k % 4 + 1 + k % 3) % 4]  # an image of `cls` filed under another class
        _save(root / wrong / f"flip_{k:03d}.png", _picture(rng, CLASSES.index(cls)))


def _loaded_names(root, skipped: list[str]) -> np.ndarray:
    names = [
        f"{d.name}/{f.name}"
        for d in sorted(p for p in root.iterdir() if p.is_dir())
        for f in sorted(d.iterdir())
        if f.suffix.lower() in IMAGE_SUFFIXES
    ]
    return np.array([n for n in names if n not in set(skipped)])


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    rng = np.random.default_rng(2024)
    tmp = tmp_path_factory.mktemp("folder")
    val = _clean_folder(tmp / "val", rng, 10)
    test = _clean_folder(tmp / "test", rng, 20)
    _plant(tmp / "train", rng, val + test)
    x, y, classes, skipped = load_image_folder(tmp / "train", SIZE, 1)
    splits = {"train": (x, y)}
    for name in ("val", "test"):
        splits[name] = load_image_folder(tmp / name, SIZE, 1)[:2]
    return splits, skipped, _loaded_names(tmp / "train", skipped), classes


def _kind(names: np.ndarray) -> np.ndarray:
    return np.array([n.split("/")[1].split("_")[0] for n in names])


def _recall_fp(flagged: np.ndarray, planted: np.ndarray) -> tuple[float, float]:
    """Share of the planted samples flagged, and share of the other samples flagged."""
    return flagged[planted].mean(), flagged[~planted].mean()


def test_loader_reads_classes_sizes_and_skips_every_corrupt_file(planted):
    splits, skipped, names, classes = planted
    x, y = splits["train"]
    assert classes == list(CLASSES)
    assert x.shape[1:] == (SIZE, SIZE, 1) and x.dtype == np.float32
    assert x.min() >= 0.0 and x.max() <= 1.0
    assert sorted(skipped) == sorted(
        f"{CLASSES[k % 4]}/corrupt_{k:03d}.png" for k in range(N_PLANT)
    )
    assert len(names) == len(y) == 4 * N_BASE + 4 * N_PLANT


@pytest.mark.parametrize(
    "kind, reason",
    [
        ("dup", "duplicate"),
        ("near", "near_duplicate"),
        ("leak", "leakage"),
        ("flip", "label_issue"),
    ],
)
def test_clean_finds_each_planted_kind(planted, kind, reason):
    splits, _, names, _ = planted
    reasons = audit_splits(splits, CleanConfig(), (SIZE, SIZE, 1), seed=0)["train"]
    recall, fp = _recall_fp(reasons == reason, _kind(names) == kind)
    print(f"{reason}: recall {recall:.3f}, false positives {fp:.3f}")
    assert recall >= 0.9 and fp <= 0.05


def test_clean_never_touches_val_or_test_and_drops_only_flagged(planted):
    splits, _, names, _ = planted
    shape = (SIZE, SIZE, 1)
    out, counts = clean_splits(splits, CleanConfig(label_issues="drop"), shape)
    for name in ("val", "test"):
        assert sum(counts[name].values()) == 0
        np.testing.assert_array_equal(out[name][0], splits[name][0])
    total = sum(counts["train"].values())
    assert len(out["train"][1]) == len(splits["train"][1]) - total
    flagged = count_reasons(audit_splits(splits, CleanConfig(), shape))
    assert flagged["train"]["label_issue"] == counts["train"]["label_issue"]
    kept, _ = clean_splits(splits, CleanConfig(label_issues="flag"), shape)
    assert len(kept["train"][1]) == len(out["train"][1]) + counts["train"]["label_issue"]


def _write(root, cls: str, name: str, data: bytes | None = None) -> None:
    (root / cls).mkdir(parents=True, exist_ok=True)
    if data is None:
        _save(root / cls / name, np.full((8, 8), 100, np.uint8))
    else:
        (root / cls / name).write_bytes(data)


def test_an_empty_class_folder_is_a_one_line_error(tmp_path):
    _write(tmp_path, "a", "1.png")
    (tmp_path / "b").mkdir()
    with pytest.raises(DataError, match=r"class folder '.*b' has no PNG or JPEG") as e:
        load_image_folder(tmp_path, 8, 1)
    assert "\n" not in str(e.value)


def test_a_single_class_is_a_one_line_error(tmp_path):
    _write(tmp_path, "a", "1.png")
    with pytest.raises(DataError, match="1 class folder"):
        load_image_folder(tmp_path, 8, 1)


def test_a_class_with_no_readable_image_is_a_one_line_error(tmp_path):
    _write(tmp_path, "a", "1.png")
    _write(tmp_path, "b", "1.png", b"\x89PNG broken")
    _write(tmp_path, "b", "2.jpg", b"")
    with pytest.raises(DataError, match=r"no readable image \(2 skipped\)"):
        load_image_folder(tmp_path, 8, 1)


def test_a_missing_folder_is_a_one_line_error(tmp_path):
    with pytest.raises(DataError, match="is not a folder"):
        load_image_folder(tmp_path / "nope", 8, 1)


def test_rgb_channels_and_resizing(tmp_path):
    _write(tmp_path, "a", "1.png")
    _write(tmp_path, "b", "1.png")
    x, y, _, skipped = load_image_folder(tmp_path, 12, 3)
    assert x.shape == (2, 12, 12, 3) and y.tolist() == [0, 1] and skipped == []
    np.testing.assert_allclose(x, 100 / 255, atol=1e-6)
