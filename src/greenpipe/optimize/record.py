"""Before/after records of an optimization: parameters, file size, accuracy and latency."""

from __future__ import annotations

from typing import Any

import numpy as np

from greenpipe.backends.base import Backend
from greenpipe.evaluate.speed import latency_ms


def snapshot(
    backend: Backend, model: Any, x: np.ndarray, y: np.ndarray, warmup: int, runs: int
) -> dict[str, float]:
    """{"params", "val_acc", "latency_p50_ms"} of one model: accuracy on (x, y) as a fraction,
    median latency in ms at batch size 1 after `warmup` untimed calls."""

    def predict(xb: np.ndarray) -> np.ndarray:
        return backend.predict(model, xb, batch_size=max(len(xb), 1))

    acc = float((backend.predict(model, x).argmax(1) == y).mean())
    lat = latency_ms(predict, x, warmup, runs)["latency_p50_ms"]
    return {"params": backend.count_params(model), "val_acc": acc, "latency_p50_ms": lat}


def before_after(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """`<key>_before`, `<key>_after` for the keys both share, and `<key>_ratio` = after /
    before where before is positive (params_ratio, size_bytes_ratio, ...)."""
    out: dict[str, float] = {}
    for key in (k for k in before if k in after):
        out[f"{key}_before"], out[f"{key}_after"] = before[key], after[key]
        if before[key]:
            out[f"{key}_ratio"] = after[key] / before[key]
    return out
