"""Seeded, deterministic augmentation of the train split: small shifts, rotations, noise."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from greenpipe.config import AugmentConfig


def _transform(img: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig) -> np.ndarray:
    out = img
    if cfg.max_rotation_deg > 0:
        angle = rng.uniform(-cfg.max_rotation_deg, cfg.max_rotation_deg)
        out = ndimage.rotate(out, angle, axes=(0, 1), reshape=False, order=1, mode="constant")
    if cfg.max_shift_px > 0:
        dy, dx = rng.integers(-cfg.max_shift_px, cfg.max_shift_px + 1, size=2)
        out = ndimage.shift(out, (dy, dx, 0), order=0, mode="constant")
    if cfg.noise_std > 0:
        out = out + rng.normal(0.0, cfg.noise_std, size=out.shape)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def augment(
    x: np.ndarray, y: np.ndarray, cfg: AugmentConfig, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Return the originals followed by (factor - 1) transformed copies of each sample.

    The result has factor * N samples; the same seed gives the same bytes.
    """
    rng = np.random.default_rng(seed)
    xs, ys = [x.astype(np.float32)], [y]
    for _ in range(cfg.factor - 1):
        xs.append(np.stack([_transform(img, rng, cfg) for img in x]) if len(x) else x)
        ys.append(y)
    return np.concatenate(xs), np.concatenate(ys)
