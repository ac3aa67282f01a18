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


# model: (the model it is derived from, where its own energy is in the stages' metrics)
LINEAGE: dict[str, tuple[str | None, tuple[str, ...]]] = {
    "teacher": (None, ("train", "energy", "energy_kwh")),
    "student_scratch": (None, ("distill", "student_scratch", "energy_kwh")),
    "student_kd": ("teacher", ("distill", "student_kd", "energy_kwh")),
    "student_kd_int8": ("student_kd", ("optimize", "student_kd_int8", "energy_kwh")),
    "student_kd_pruned": ("student_kd", ("optimize", "student_kd_pruned", "energy_kwh")),
    "student_kd_pruned_int8": (
        "student_kd_pruned",
        ("optimize", "student_kd_pruned_int8", "energy_kwh"),
    ),
}


def source_of(name: str) -> str | None:
    """The model `name` was derived from (teacher for student_kd, ...), or None."""
    return LINEAGE.get(name, (None, ()))[0]


def own_energy(name: str, metrics: dict[str, dict]) -> float | None:
    """kWh of the step that made `name` from its source (its training, pruning, quantization).

    Metrics written before optimize did pruning have no per-model blocks: the whole optimize
    stage was then the quantization of student_kd.
    """
    if name not in LINEAGE:
        return None
    path = LINEAGE[name][1]
    if name == "student_kd_int8" and _get(metrics, "optimize", name) is None:
        path = ("optimize", "energy", "energy_kwh")
    return _get(metrics, *path)


def energy_to_obtain(name: str, metrics: dict[str, dict]) -> dict[str, float | None]:
    """kWh spent to obtain a model: its own step plus everything upstream of it.

    teacher: the train stage; student_scratch: its distill task; student_kd: teacher + its
    distill task (the teacher's training is charged to every distilled student);
    student_kd_int8 and student_kd_pruned: student_kd + their optimize task;
    student_kd_pruned_int8: student_kd_pruned + its optimize task. None if any part is unknown.
    """
    own = own_energy(name, metrics)
    total, node = own, source_of(name)
    while node is not None and total is not None:
        part = own_energy(node, metrics)
        total = None if part is None else total + part
        node = source_of(node)
    return {"own_kwh": own, "obtain_kwh": total}


QUALITY_KEYS = (
    "accuracy",
    "accuracy_ci_low",
    "accuracy_ci_high",
    "macro_f1",
    "macro_f1_ci_low",
    "macro_f1_ci_high",
)
SPEED_KEYS = (
    "params",
    "latency_p50_ms",
    "latency_p95_ms",
    "latency_batch_p50_ms",
    "latency_batch_p95_ms",
    "latency_batch_size",
    "throughput_sps",
    "memory_peak_rss_mb",
    "memory_inference_peak_mb",
    "size_bytes",
    "energy_per_1k_std_kwh",
    "energy_repeats",
)


def model_rows(metrics: dict[str, dict], total_inferences: int) -> list[dict[str, Any]]:
    """One row per evaluated model, with quality, size, speed, memory and energy."""
    rows = []
    for name, m in (_get(metrics, "evaluate", "models") or {}).items():
        e = energy_to_obtain(name, metrics)
        per_1k = m.get("energy_per_1k_kwh")
        total = None
        if e["obtain_kwh"] is not None and per_1k is not None:
            total = e["obtain_kwh"] + per_1k * total_inferences / 1000
        row = {"model": name, "backend": m.get("backend", ""), "source": source_of(name)}
        row.update({k: m.get(k) for k in (*QUALITY_KEYS, *SPEED_KEYS)})
        row["size_kb"] = m["size_bytes"] / 1024 if m.get("size_bytes") is not None else None
        row.update(
            energy_per_1k_kwh=per_1k,
            train_kwh=e["own_kwh"],
            obtain_kwh=e["obtain_kwh"],
            total_kwh=total,
        )
        rows.append(row)
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
