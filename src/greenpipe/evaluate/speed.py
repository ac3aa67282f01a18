"""Latency, throughput and energy per 1,000 inferences of a predict function."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import numpy as np

Predict = Callable[[np.ndarray], Any]


def latency_ms(predict: Predict, x: np.ndarray, warmup: int, runs: int) -> dict[str, float]:
    """p50/p95/mean latency in ms at batch size 1, after `warmup` untimed calls."""
    for i in range(warmup):
        predict(x[i % len(x)][None])
    times = np.empty(runs)
    for i in range(runs):
        xi = x[i % len(x)][None]
        t0 = time.perf_counter()
        predict(xi)
        times[i] = time.perf_counter() - t0
    ms = times * 1e3
    return {
        "latency_p50_ms": float(np.percentile(ms, 50)),
        "latency_p95_ms": float(np.percentile(ms, 95)),
        "latency_mean_ms": float(ms.mean()),
    }


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
) -> dict[str, Any]:
    """kWh per 1,000 inferences, from a CodeCarbon task around a timed inference loop.

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
        return {"inferences": done, "energy_per_1k_kwh": None}
    return {
        "inferences": done,
        "energy_per_1k_kwh": reading.energy_kwh / done * 1000,
        "energy_loop_kwh": reading.energy_kwh,
        "energy_loop_s": reading.duration_s,
    }
