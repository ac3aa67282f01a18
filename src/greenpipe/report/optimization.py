"""Before/after comparison of optimized models, and the flag that keeps a non-gain honest.

An optimized model (int8, pruned) is compared with the model it was derived from, on the
figures the evaluate stage measured for both. It counts as smaller only if its file is at
least `GAIN_MARGIN` smaller, and as faster only if its median latency is at least
`GAIN_MARGIN` lower, at batch size 1 and at the larger batch separately; anything else
(a masked model stored densely, an int8 model slowed down by quantize/dequantize steps) is
flagged instead of being counted as a gain.
"""

from __future__ import annotations

from typing import Any

from greenpipe.report.devices import across_flag

GAIN_MARGIN = 0.05  # a change within 5% is measurement noise, not a gain
COMPARED = (
    "params",
    "size_kb",
    "accuracy",
    "latency_p50_ms",
    "latency_batch_p50_ms",
    "energy_per_1k_j",
    "memory_peak_rss_mb",
)


def is_gain(after: float | None, before: float | None) -> bool:
    """True if `after` is known and at least GAIN_MARGIN below a known, positive `before`."""
    if after is None or before is None or before <= 0:
        return False
    return after <= (1 - GAIN_MARGIN) * before


def _check(after: float | None, before: float | None, what: str, problem: str) -> str | None:
    if after is None or before is None:
        return f"{what} not measured"
    return None if is_gain(after, before) else problem


def flag(row: dict[str, Any], source: dict[str, Any]) -> str:
    """'' if `row` is smaller and faster than `source` (its parent model) on the same device,
    else what it is not (e.g. "not faster at batch 1" for an int8 model slower than its float
    parent, "across devices (cpu vs cuda)" for an int8 model on the CPU beside a float parent
    on a GPU)."""
    size = row.get("latency_batch_size")
    batch = f"{size:g}" if isinstance(size, int | float) else "N"  # MLflow gives 32.0 back
    checks = [
        _check(row.get("size_kb"), source.get("size_kb"), "size", "not smaller"),
        _check(
            row.get("latency_p50_ms"),
            source.get("latency_p50_ms"),
            "batch-1 latency",
            "not faster at batch 1",
        ),
        _check(
            row.get("latency_batch_p50_ms"),
            source.get("latency_batch_p50_ms"),
            "batch latency",
            f"not faster at batch {batch}",
        ),
    ]
    checks.append(across_flag(row, source))  # a gain across devices is not the model's own
    return "; ".join(c for c in checks if c)


def _sources(rows: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(r["model"], r.get("backend", "")): r for r in rows}


def add_flags(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows with "flag" set on every optimized model whose parent was evaluated too
    (int8 and pruned models: see `greenpipe.report.tables.LINEAGE`); "" on the others."""
    by = _sources(rows)
    out = []
    for r in rows:
        src = by.get((r.get("source"), r.get("backend", ""))) if _optimized(r) else None
        out.append({**r, "flag": flag(r, src) if src else ""})
    return out


def _optimized(row: dict[str, Any]) -> bool:
    return row["model"].endswith(("_int8", "_pruned"))


def optimization_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One before -> after row per optimized model whose parent was evaluated."""
    by = _sources(rows)
    out = []
    for r in rows:
        src = by.get((r.get("source"), r.get("backend", "")))
        if not _optimized(r) or src is None:
            continue
        row = {"model": r["model"], "backend": r.get("backend", ""), "source": src["model"]}
        for key in COMPARED:
            row[f"{key}_before"], row[f"{key}_after"] = src.get(key), r.get(key)
        row["flag"] = flag(r, src) or "smaller and faster"
        out.append(row)
    return out
