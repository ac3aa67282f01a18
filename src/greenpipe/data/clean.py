"""Cleaning: drop invalid samples, exact duplicates and cross-split leakage; count each reason."""

from __future__ import annotations

import hashlib

import numpy as np

from greenpipe.config import CleanConfig

REASONS = ("invalid", "duplicate", "leakage")


def _hashes(x: np.ndarray) -> list[str]:
    return [hashlib.sha1(np.ascontiguousarray(s).tobytes()).hexdigest() for s in x]


def invalid_mask(x: np.ndarray, y: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """True where a sample has non-finite values, values outside [0, 1], or a wrong shape."""
    if x.shape[1:] != shape:
        return np.ones(len(x), dtype=bool)
    if len(x) == 0:
        return np.zeros(0, dtype=bool)
    flat = x.reshape(len(x), -1)
    bad = ~np.isfinite(flat).all(axis=1) | (np.nan_to_num(flat, nan=0) < 0).any(axis=1)
    bad |= (np.nan_to_num(flat, nan=0) > 1).any(axis=1) | (y < 0)
    return bad


def clean_splits(
    splits: dict[str, tuple[np.ndarray, np.ndarray]], cfg: CleanConfig, shape: tuple[int, ...]
) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], dict[str, dict[str, int]]]:
    """Return cleaned splits and counts {split: {reason: n}}.

    Order: invalid samples first, then exact duplicates within each split (first copy kept),
    then leakage: a train sample identical to a val or test sample is removed from train,
    never from val or test, so the held-out sets stay as drawn.
    """
    out, counts = {}, {}
    for name, (x, y) in splits.items():
        keep = ~invalid_mask(x, y, shape) if cfg.drop_invalid else np.ones(len(x), bool)
        n_invalid = int((~keep).sum())
        x, y = x[keep], y[keep]
        n_dup = 0
        if cfg.drop_duplicates:
            _, first = np.unique(np.array(_hashes(x)), return_index=True)
            first = np.sort(first)
            n_dup = len(x) - len(first)
            x, y = x[first], y[first]
        out[name] = (x, y)
        counts[name] = {"invalid": n_invalid, "duplicate": n_dup, "leakage": 0}
    if cfg.drop_leakage and "train" in out:
        held = {h for s in out if s != "train" for h in _hashes(out[s][0])}
        x, y = out["train"]
        keep = np.array([h not in held for h in _hashes(x)], dtype=bool)
        counts["train"]["leakage"] = int((~keep).sum())
        out["train"] = (x[keep], y[keep])
    return out, counts
