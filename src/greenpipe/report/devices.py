"""Where each model ran inference (evaluate's `device` per model), and the flag on every
comparison between models that ran on different devices.

With a GPU, a framework's own float models run on it while its int8 and runtime models
(ONNX Runtime, AOTInductor, TFLite) run on the CPU: a latency, throughput or energy ratio
between the two then measures the devices as much as the technique, so the report says so
wherever it compares them.
"""

from __future__ import annotations

from typing import Any

Row = dict[str, Any]
# the figures of a model row that depend on the device it ran on (inference)
DEVICE_BOUND = (
    "energy_per_1k_j",
    "latency_p50_ms",
    "latency_batch_p50_ms",
    "throughput_sps",
    "memory_inference_peak_mb",
)


def across(a: Row, b: Row) -> str | None:
    """ "cpu vs cuda" when rows `a` and `b` ran on different devices, None when on the same
    one or when either is unknown (records written before evaluate named the device)."""
    da, db = a.get("device"), b.get("device")
    return f"{da} vs {db}" if da and db and da != db else None


def across_flag(a: Row, b: Row) -> str:
    """ "across devices (cpu vs cuda)", or "" when `a` and `b` ran on the same device."""
    pair = across(a, b)
    return f"across devices ({pair})" if pair else ""


def device_note(rows: list[Row]) -> str:
    """One sentence when the models ran on more than one device (which ran where), else ""."""
    by_device: dict[str, list[str]] = {}
    for r in rows:
        if r.get("device"):
            by_device.setdefault(r["device"], []).append(f"{r['model']} [{r.get('backend', '')}]")
    if len(by_device) < 2:
        return ""
    where = "; ".join(f"on {d}: {', '.join(names)}" for d, names in sorted(by_device.items()))
    return (
        f"The models ran on {len(by_device)} devices ({where}). Speed, memory and energy "
        "compared between devices measure the devices as much as the models: such "
        "comparisons are marked 'across devices'."
    )
