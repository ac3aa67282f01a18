"""Dataset compression against its downstream cost: for every run, the compression setting,
the ratio it reached, and what the teacher trained on that data scored and spent; each
compressed run is compared with the uncompressed run of otherwise the same configuration
(same seed, same other params), against the target of a ratio >= 4x for a test accuracy
loss <= 0.5 points.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

TARGET_RATIO = 4.0
MAX_LOSS_POINTS = 0.5
PREFIX = "compress."
# the teacher is the model trained directly on the (compressed) data set
DOWNSTREAM_MODEL = "teacher"


def _num(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def is_uncompressed(params: dict[str, str]) -> bool:
    """float32 stored with no codec, full resolution, every train sample kept."""
    return (
        params.get("compress.dtype") == "float32"
        and params.get("compress.codec") == "none"
        and _num(params.get("compress.downscale", 1)) == 1
        and _num(params.get("compress.fraction", 1)) == 1
    )


def setting(params: dict[str, str]) -> str:
    """A short label, e.g. `uint8 zstd-19`, `uint8 zlib-6, 1/2 res, 50% kcenter`."""
    if is_uncompressed(params):
        return "uncompressed (float32, no codec)"
    codec = params.get("compress.codec", "?")
    text = f"{params.get('compress.dtype', '?')} {codec}"
    if codec != "none":
        text += f"-{params.get('compress.level', '?')}"
    down = _num(params.get("compress.downscale", 1))
    if down and down != 1:
        text += f", 1/{down:g} res"
    frac = _num(params.get("compress.fraction", 1))
    if frac is not None and frac != 1:
        text += f", {frac:.0%} {params.get('compress.subsample', '')}".rstrip()
    return text


def _rest(point: dict[str, Any]) -> str:
    """Fingerprint of the run's params other than compress.*, plus its seed and backend."""
    params = point.get("run_params") or {}
    kept = {k: v for k, v in sorted(params.items()) if not k.startswith(PREFIX)}
    key = json.dumps([kept, point.get("seed"), point.get("backend")])
    return hashlib.sha256(key.encode()).hexdigest()[:12]


def compression_rows(points: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (run, backend) with a recorded compression ratio: setting, ratio, train
    samples kept, compression energy, the teacher's test accuracy and training energy, and
    against the uncompressed run of the same configuration the accuracy change in points
    and whether the target is met."""
    teachers = [
        p
        for p in points
        if p.get("model") == DOWNSTREAM_MODEL and p.get("compress_ratio") is not None
    ]
    baselines: dict[str, dict] = {}
    for p in teachers:  # oldest first: the latest uncompressed run of a configuration wins
        if is_uncompressed(p.get("run_params") or {}):
            baselines[_rest(p)] = p
    rows = []
    for p in teachers:
        base = baselines.get(_rest(p))
        row = {
            "run_name": p.get("run_name"),
            "exp_name": p.get("exp_name"),
            "seed": p.get("seed"),
            "backend": p.get("backend"),
            "setting": setting(p.get("run_params") or {}),
            "ratio": p["compress_ratio"],
            "train_samples": p.get("compress_train_samples"),
            "compress_j": p.get("compress_j"),
            "accuracy": p.get("accuracy"),
            "train_j": p.get("train_j"),
            "accuracy_change_pts": None,
            "verdict": "no uncompressed run of this configuration to compare with",
        }
        if base is not None and base is not p and p.get("accuracy") is not None:
            change = (p["accuracy"] - base["accuracy"]) * 100
            row["accuracy_change_pts"] = change
            ok = p["compress_ratio"] >= TARGET_RATIO and change >= -MAX_LOSS_POINTS
            row["verdict"] = (
                f"{'meets' if ok else 'misses'} ratio >= {TARGET_RATIO:g}x "
                f"with loss <= {MAX_LOSS_POINTS} pt"
            )
        elif base is p:
            row["verdict"] = "baseline"
        rows.append(row)
    return sorted(rows, key=lambda r: (r["backend"] or "", r["seed"] or 0, r["ratio"]))
