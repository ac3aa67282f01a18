"""Cleaning: invalid samples, exact and near duplicates, cross-split leakage and label issues.

`audit_splits` gives every sample its first reason ("" = none), in this order: invalid
(non-finite, outside [0, 1], wrong shape, negative label), duplicate (same bytes as an earlier
sample of the split), near_duplicate (pHash within `near_duplicate_distance` bits of an earlier
sample of the split), leakage (a train sample equal or near to a val/test sample, or a val
sample equal or near to a test sample: removed from train, or val, never from test), and
label_issue (cleanlab on the train split). `clean_splits` applies it.
"""

from __future__ import annotations

import numpy as np

from greenpipe.config import CleanConfig
from greenpipe.data.fingerprint import content_hashes, near_any, near_duplicates_within, phash
from greenpipe.data.labels import label_issues

REASONS = ("invalid", "duplicate", "near_duplicate", "leakage", "label_issue")
HELD_OUT = ("val", "test")  # later = more protected: test never loses a sample
Splits = dict[str, tuple[np.ndarray, np.ndarray]]


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


def _mark(reasons: np.ndarray, alive: np.ndarray, hit: np.ndarray, reason: str) -> None:
    """Give `reason` to the alive samples where `hit` (a mask over the alive ones) is true."""
    reasons[np.flatnonzero(alive)[hit]] = reason


def _within(x: np.ndarray, y: np.ndarray, cfg: CleanConfig, shape) -> np.ndarray:
    reasons = np.full(len(x), "", dtype=object)
    if cfg.drop_invalid:
        reasons[invalid_mask(x, y, shape)] = "invalid"
    if cfg.drop_duplicates:
        alive = reasons == ""
        _, first = np.unique(np.array(content_hashes(x[alive]), dtype=object), return_index=True)
        _mark(reasons, alive, ~np.isin(np.arange(alive.sum()), first), "duplicate")
    if cfg.drop_near_duplicates and x.shape[1:] == shape:
        alive = reasons == ""
        near = near_duplicates_within(phash(x[alive]), cfg.near_duplicate_distance)
        _mark(reasons, alive, near, "near_duplicate")
    return reasons


def _leakage(splits: Splits, reasons: dict[str, np.ndarray], cfg: CleanConfig) -> None:
    names = [s for s in ("train", *HELD_OUT) if s in splits]
    kept = {s: splits[s][0][reasons[s] == ""] for s in names}
    hashes = {s: set(content_hashes(kept[s])) for s in names}
    use_near = cfg.drop_near_duplicates
    pho = {s: phash(kept[s]) if use_near and kept[s].ndim == 4 else None for s in names}
    for i, s in enumerate(names[:-1]):
        protected = names[i + 1 :]
        alive = reasons[s] == ""
        held = set().union(*(hashes[p] for p in protected))
        leak = np.array([h in held for h in content_hashes(kept[s])], dtype=bool)
        if use_near and pho[s] is not None:
            ref = [pho[p] for p in protected if pho[p] is not None]
            ref_all = np.concatenate(ref) if ref else np.zeros(0, np.uint64)
            leak |= near_any(pho[s], ref_all, cfg.near_duplicate_distance)
        _mark(reasons[s], alive, leak, "leakage")


def audit_splits(splits: Splits, cfg: CleanConfig, shape: tuple[int, ...], seed: int = 0):
    """{split: array of reasons, one per sample ("" = no problem found)}."""
    reasons = {name: _within(x, y, cfg, shape) for name, (x, y) in splits.items()}
    if cfg.drop_leakage and "train" in splits:
        _leakage(splits, reasons, cfg)
    if cfg.label_issues != "off" and "train" in splits:
        x, y = splits["train"]
        alive = reasons["train"] == ""
        if alive.any() and x.shape[1:] == shape:
            issues = label_issues(x[alive], y[alive], cfg.label_folds, seed)
            _mark(reasons["train"], alive, issues, "label_issue")
    return reasons


def dropped(reasons: np.ndarray, cfg: CleanConfig) -> np.ndarray:
    """True for samples to remove: every reason, except label issues under the `flag` policy."""
    drop = reasons != ""
    return drop & (reasons != "label_issue") if cfg.label_issues == "flag" else drop


def count_reasons(reasons: dict[str, np.ndarray]) -> dict[str, dict[str, int]]:
    """{split: {reason: number of samples found with it}} (every reason, zeros included)."""
    return {s: {r: int((a == r).sum()) for r in REASONS} for s, a in reasons.items()}


def clean_splits(
    splits: Splits, cfg: CleanConfig, shape: tuple[int, ...], seed: int = 0
) -> tuple[Splits, dict[str, dict[str, int]]]:
    """Return cleaned splits and counts {split: {reason: n}} of the samples found per reason
    (label issues are counted, and removed only under the `drop` policy)."""
    reasons = audit_splits(splits, cfg, shape, seed)
    out = {}
    for name, (x, y) in splits.items():
        keep = ~dropped(reasons[name], cfg)
        out[name] = (x[keep], y[keep]) if x.shape[1:] == shape else (x[:0], y[:0])
    return out, count_reasons(reasons)


def class_balance(y: np.ndarray) -> dict[str, float]:
    """Samples per class (min, max), the imbalance ratio max/min and the normalised entropy of
    the class distribution (1 = perfectly balanced)."""
    _, counts = np.unique(y, return_counts=True)
    if len(counts) == 0:
        return {"classes": 0, "min": 0, "max": 0, "imbalance_ratio": 0.0, "entropy": 0.0}
    p = counts / counts.sum()
    ent = float(-(p * np.log(p)).sum() / np.log(len(p))) if len(p) > 1 else 1.0
    return {
        "classes": len(counts),
        "min": int(counts.min()),
        "max": int(counts.max()),
        "imbalance_ratio": float(counts.max() / counts.min()),
        "entropy": ent,
    }
