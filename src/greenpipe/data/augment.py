"""Seeded, deterministic augmentation of the train split with albumentations.

`transforms` in params is an ordered list of {name, p, limit}; each name maps to one
albumentations transform (the unit of `limit` is given per name below). A `Compose` seeded
with the stage seed draws every random parameter, so the same seed gives the same bytes.
"""

from __future__ import annotations

import numpy as np

from greenpipe.config import AugmentConfig, TransformSpec


def _odd(v: float) -> int:
    k = max(3, int(round(v)))
    return k if k % 2 else k + 1


def build_transform(spec: TransformSpec):
    """The albumentations transform for one params entry.

    flip: horizontal flip; rotate: +-limit degrees; shift: +-limit of the size; zoom: scale in
    [1 - limit, 1 + limit]; noise: Gaussian with std `limit` ([0, 1] units); brightness:
    +-limit; blur: Gaussian kernel up to `limit` px (odd, >= 3). Borders are filled with 0.
    """
    import albumentations as A

    lim, p = spec.limit, spec.p
    border = {"border_mode": 0, "fill": 0}  # cv2.BORDER_CONSTANT, black
    build = {
        "flip": lambda: A.HorizontalFlip(p=p),
        "rotate": lambda: A.Affine(rotate=(-lim, lim), p=p, **border),
        "shift": lambda: A.Affine(translate_percent=(-lim, lim), p=p, **border),
        "zoom": lambda: A.Affine(scale=(1 - lim, 1 + lim), p=p, **border),
        "noise": lambda: A.GaussNoise(std_range=(lim, lim), mean_range=(0, 0), p=p),
        "brightness": lambda: A.RandomBrightnessContrast(
            brightness_limit=lim, contrast_limit=0, p=p
        ),
        "blur": lambda: A.GaussianBlur(blur_limit=(3, _odd(lim)), p=p),
    }
    return build[spec.name]()


def augment(
    x: np.ndarray, y: np.ndarray, cfg: AugmentConfig, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Return the originals followed by (factor - 1) transformed copies of each sample.

    The result has factor * N samples, float32 clipped to [0, 1]; the same seed gives the same
    bytes. An empty transform list gives exact copies.
    """
    import albumentations as A

    pipe = A.Compose([build_transform(t) for t in cfg.transforms], seed=seed)
    xs, ys = [x.astype(np.float32)], [y]
    for _ in range(cfg.factor - 1):
        copies = [pipe(image=np.ascontiguousarray(img, np.float32))["image"] for img in x]
        out = np.stack(copies).reshape(x.shape) if len(x) else x.astype(np.float32)
        xs.append(np.clip(out, 0.0, 1.0).astype(np.float32))
        ys.append(y)
    return np.concatenate(xs), np.concatenate(ys)
