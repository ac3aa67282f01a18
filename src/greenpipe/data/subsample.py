"""Subsampling of a training set to a fraction: stratified random, or a k-center greedy coreset.

Both keep each class's share (per-class quotas by largest remainder, at least one sample per
class) and return sorted indices, so the kept samples stay in their original order.
"""

from __future__ import annotations

import numpy as np


def class_quotas(y: np.ndarray, fraction: float) -> dict[int, int]:
    """Samples to keep per class: round(fraction * N) in total, split in proportion to the
    class counts (largest remainder), each class keeping at least one sample."""
    classes, counts = np.unique(y, return_counts=True)
    total = max(int(round(fraction * len(y))), len(classes))
    exact = counts * total / len(y)
    quota = np.maximum(np.floor(exact).astype(int), 1)
    order = np.argsort(-(exact - np.floor(exact)), kind="stable")
    for i in order[: max(total - quota.sum(), 0)]:
        quota[i] += 1
    return {int(c): int(min(q, n)) for c, q, n in zip(classes, quota, counts, strict=True)}


def k_center_greedy(features: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of k points chosen by k-center greedy (Sener & Savarese, ICLR 2018): start at a
    random point, then repeatedly add the point farthest (Euclidean) from those chosen."""
    n = len(features)
    if k >= n:
        return np.arange(n)
    f = features.reshape(n, -1).astype(np.float64)
    chosen = [int(rng.integers(n))]
    dist = ((f - f[chosen[0]]) ** 2).sum(axis=1)
    for _ in range(k - 1):
        nxt = int(np.argmax(dist))
        chosen.append(nxt)
        dist = np.minimum(dist, ((f - f[nxt]) ** 2).sum(axis=1))
    return np.array(chosen)


def subsample(x: np.ndarray, y: np.ndarray, fraction: float, method: str, seed: int) -> np.ndarray:
    """Sorted indices of the kept samples: per-class quotas filled at random (`stratified`) or
    by k-center greedy on the pixels within each class (`kcenter`). fraction 1 keeps all."""
    if fraction >= 1.0 or len(y) == 0:
        return np.arange(len(y))
    rng = np.random.default_rng(seed)
    keep = []
    for c, k in class_quotas(y, fraction).items():
        idx = np.flatnonzero(y == c)
        if method == "kcenter":
            keep.append(idx[k_center_greedy(x[idx], k, rng)])
        else:
            keep.append(rng.choice(idx, size=k, replace=False))
    return np.sort(np.concatenate(keep))
