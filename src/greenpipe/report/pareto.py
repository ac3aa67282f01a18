"""The Pareto front of accuracy (higher is better) against energy (lower is better)."""

from __future__ import annotations

import math
from collections.abc import Sequence


def _usable(p: tuple[float | None, float | None]) -> bool:
    acc, energy = p
    return acc is not None and energy is not None and math.isfinite(acc) and math.isfinite(energy)


def dominates(a: tuple[float, float], b: tuple[float, float]) -> bool:
    """True if `a` = (accuracy, energy) is at least as accurate and at most as costly as `b`,
    and strictly better in one of the two."""
    return a[0] >= b[0] and a[1] <= b[1] and (a[0] > b[0] or a[1] < b[1])


def pareto_front(points: Sequence[tuple[float | None, float | None]]) -> list[bool]:
    """For each (accuracy, energy) point, whether no other point dominates it.

    Maximise accuracy, minimise energy. Identical points do not dominate each other, so
    duplicates on the front are all kept; a point with a missing or non-finite value is never
    on the front and never dominates. O(n log n): after sorting by energy (then by accuracy,
    best first), a point is on the front if it beats the best accuracy of every cheaper point,
    or ties the point just kept on both values.
    """
    order = sorted(
        (i for i, p in enumerate(points) if _usable(p)),
        key=lambda i: (points[i][1], -points[i][0]),
    )
    front = [False] * len(points)
    best_acc, last = -math.inf, None
    for i in order:
        acc, energy = points[i]
        if acc > best_acc or (last is not None and (acc, energy) == last):
            front[i], best_acc, last = True, max(best_acc, acc), (acc, energy)
    return front
