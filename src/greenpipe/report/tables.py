"""Rows of the report's tables, built from the stages' metrics dicts (metrics/<stage>.json)."""

from __future__ import annotations

from typing import Any

STAGE_ORDER = (
    "prepare",
    "clean",
    "augment",
    "compress",
    "train",
    "distill",
    "optimize",
    "evaluate",
    "report",
)


def _get(d: dict, *keys: str) -> Any:
    for k in keys:
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d


def energy_to_obtain(name: str, metrics: dict[str, dict]) -> dict[str, float | None]:
    """kWh spent to obtain a model: its own training, plus the teacher's for distilled ones.

    teacher: the train stage; student_scratch: its distill task; student_kd: teacher + its
    distill task; student_kd_int8: student_kd + the optimize stage.
    """
    teacher = _get(metrics, "train", "energy", "energy_kwh")
    kd = _get(metrics, "distill", "student_kd", "energy_kwh")
    scratch = _get(metrics, "distill", "student_scratch", "energy_kwh")
    opt = _get(metrics, "optimize", "energy", "energy_kwh")
    own = {
        "teacher": teacher,
        "student_scratch": scratch,
        "student_kd": kd,
        "student_kd_int8": opt,
    }.get(name)
    parts = {
        "teacher": [teacher],
        "student_scratch": [scratch],
        "student_kd": [teacher, kd],
        "student_kd_int8": [teacher, kd, opt],
    }.get(name, [own])
    total = None if any(p is None for p in parts) else sum(parts)
    return {"own_kwh": own, "obtain_kwh": total}


def model_rows(metrics: dict[str, dict], total_inferences: int) -> list[dict[str, Any]]:
    """One row per evaluated model, with quality, size, speed and energy."""
    rows = []
    for name, m in (_get(metrics, "evaluate", "models") or {}).items():
        e = energy_to_obtain(name, metrics)
        per_1k = m.get("energy_per_1k_kwh")
        total = None
        if e["obtain_kwh"] is not None and per_1k is not None:
            total = e["obtain_kwh"] + per_1k * total_inferences / 1000
        rows.append(
            {
                "model": name,
                "backend": m.get("backend", ""),
                "accuracy": m.get("accuracy"),
                "macro_f1": m.get("macro_f1"),
                "params": m.get("params"),
                "size_kb": m["size_bytes"] / 1024 if m.get("size_bytes") is not None else None,
                "latency_p50_ms": m.get("latency_p50_ms"),
                "latency_p95_ms": m.get("latency_p95_ms"),
                "throughput_sps": m.get("throughput_sps"),
                "energy_per_1k_kwh": per_1k,
                "train_kwh": e["own_kwh"],
                "obtain_kwh": e["obtain_kwh"],
                "total_kwh": total,
            }
        )
    return rows


def stage_rows(metrics: dict[str, dict]) -> list[dict[str, Any]]:
    """One row per stage that has an energy block, in pipeline order."""
    names = sorted(
        metrics,
        key=lambda s: (
            STAGE_ORDER.index(s.split("@")[0]) if s.split("@")[0] in STAGE_ORDER else 99,
            s,
        ),
    )
    rows = []
    for stage in names:
        e = _get(metrics, stage, "energy")
        if not isinstance(e, dict):
            continue
        src = e.get("source", {})
        rows.append(
            {
                "stage": stage,
                "energy_kwh": e.get("energy_kwh"),
                "cpu_kwh": e.get("cpu_kwh"),
                "gpu_kwh": e.get("gpu_kwh"),
                "ram_kwh": e.get("ram_kwh"),
                "emissions_kg": e.get("emissions_kg"),
                "duration_s": e.get("duration_s"),
                "source": ", ".join(f"{k}={v}" for k, v in src.items() if v != "absent"),
            }
        )
    return rows
