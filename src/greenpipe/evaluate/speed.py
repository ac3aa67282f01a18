"""Latency, throughput and energy per 1,000 inferences of a predict function."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import numpy as np

Predict = Callable[[np.ndarray], Any]


def latency_ms(
    predict: Predict, x: np.ndarray, warmup: int, runs: int, batch_size: int = 1
) -> dict[str, float]:
    """p50/p95/mean latency in ms of one call on `batch_size` samples, after `warmup` untimed
    calls; the batches cycle through x. Keys `latency_*_ms` at batch size 1, else
    `latency_batch_*_ms` (plus `latency_batch_size`)."""
    n = len(x)

    def batch(i: int) -> np.ndarray:
        return x[np.arange(i * batch_size, (i + 1) * batch_size) % n]

    for i in range(warmup):
        predict(batch(i))
    times = np.empty(runs)
    for i in range(runs):
        xb = batch(i)
        t0 = time.perf_counter()
        predict(xb)
        times[i] = time.perf_counter() - t0
    ms = times * 1e3
    key = "latency" if batch_size == 1 else "latency_batch"
    out = {
        f"{key}_p50_ms": float(np.percentile(ms, 50)),
        f"{key}_p95_ms": float(np.percentile(ms, 95)),
        f"{key}_mean_ms": float(ms.mean()),
    }
    if batch_size != 1:
        out["latency_batch_size"] = batch_size
    return out


def _batches(x: np.ndarray, batch_size: int, n: int):
    """Batches cycling through x until n samples have been yielded."""
    done, i = 0, 0
    while done < n:
        take = min(batch_size, n - done)
        idx = (np.arange(i, i + take)) % len(x)
        yield x[idx]
        done, i = done + take, (i + take) % len(x)


def throughput(predict: Predict, x: np.ndarray, batch_size: int, n: int) -> float:
    """Samples per second over n samples in batches of batch_size."""
    predict(x[:batch_size])  # warm-up
    t0 = time.perf_counter()
    for xb in _batches(x, batch_size, n):
        predict(xb)
    return n / (time.perf_counter() - t0)


def energy_per_1k(
    predict: Predict,
    x: np.ndarray,
    batch_size: int,
    n: int,
    task: Callable[[str], AbstractContextManager[dict]],
    name: str,
    min_seconds: float = 2.0,
    active: Callable[[Any], float | None] | None = None,
) -> dict[str, Any]:
    """J per 1,000 inferences, from a CodeCarbon task around a timed inference loop; with
    `active` (reading -> active J above idle) also the active J per 1,000.

    The loop runs at least `n` inferences and at least `min_seconds`, so the tracker sees
    enough of the run to sample power; the energy is then divided by the inferences done.
    """
    done, t0 = 0, time.perf_counter()
    with task(name) as box:
        while done < n or time.perf_counter() - t0 < min_seconds:
            for xb in _batches(x, batch_size, min(n, 10 * batch_size)):
                predict(xb)
                done += len(xb)
    reading = box.get("reading")
    if reading is None:
        return {"inferences": done, "energy_per_1k_j": None}
    act = active(reading) if active is not None else None
    return {
        "inferences": done,
        "energy_per_1k_j": reading.energy_j / done * 1000,
        "active_energy_per_1k_j": act / done * 1000 if act is not None else None,
        "energy_loop_j": reading.energy_j,
        "energy_loop_s": reading.duration_s,
    }


def summarize_energy(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Repeats of `energy_per_1k` -> the mean J per 1,000 inferences and its spread (sample
    std, min, max) over the repeats that were measured, with the loops' totals."""
    vals = np.array([r["energy_per_1k_j"] for r in runs if r["energy_per_1k_j"] is not None])
    out: dict[str, Any] = {
        "inferences": sum(r["inferences"] for r in runs),
        "energy_repeats": len(vals),
        "energy_per_1k_j": float(vals.mean()) if len(vals) else None,
    }
    act = [r.get("active_energy_per_1k_j") for r in runs]
    if act and all(a is not None for a in act):
        out["active_energy_per_1k_j"] = float(np.mean(act))
        out["active_energy_per_1k_std_j"] = float(np.std(act, ddof=1)) if len(act) > 1 else 0.0
    if len(vals):
        out.update(
            {
                "energy_per_1k_std_j": float(vals.std(ddof=1)) if len(vals) > 1 else 0.0,
                "energy_per_1k_min_j": float(vals.min()),
                "energy_per_1k_max_j": float(vals.max()),
                "energy_loop_j": float(sum(r.get("energy_loop_j", 0.0) for r in runs)),
                "energy_loop_s": float(sum(r.get("energy_loop_s", 0.0) for r in runs)),
            }
        )
    return out


def energy_rounds(
    predicts: dict[str, Predict],
    x: np.ndarray,
    batch_size: int,
    n: int,
    task: Callable[[str], AbstractContextManager[dict]],
    repeats: int,
    min_seconds: float = 2.0,
    active: Callable[[Any], float | None] | None = None,
) -> dict[str, dict[str, Any]]:
    """J per 1,000 inferences of several models, measured in `repeats` rounds that take the
    models in turn (A, B, C, A, B, C, ...), each loop its own CodeCarbon task `<name>#<i>`.

    Interleaving makes a drift in background load (another process starting, thermal
    throttling) hit every model alike instead of biasing whichever ran at the busy moment.
    """
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in predicts}
    for i in range(repeats):
        for name, predict in predicts.items():
            runs[name].append(
                energy_per_1k(predict, x, batch_size, n, task, f"{name}#{i}", min_seconds, active)
            )
    return {name: summarize_energy(r) for name, r in runs.items()}
