"""Rows of the report's tables, built from the stages' metrics dicts (metrics/<stage>.json)."""

from __future__ import annotations

from typing import Any

from greenpipe.report.runtimes import runtime_of

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


# model: (the model it is derived from, the stage and key of the window that made it)
LINEAGE: dict[str, tuple[str | None, tuple[str, ...]]] = {
    "teacher": (None, ("train", "teacher")),
    "student_scratch": (None, ("distill", "student_scratch")),
    "student_kd": ("teacher", ("distill", "student_kd")),
    "student_kd_int8": ("student_kd", ("optimize", "student_kd_int8")),
    "student_kd_pruned": ("student_kd", ("optimize", "student_kd_pruned")),
    "student_kd_pruned_int8": ("student_kd_pruned", ("optimize", "student_kd_pruned_int8")),
    "student_kd_onnx": ("student_kd", ("optimize", "student_kd_onnx")),
    "student_kd_onnx_int8": ("student_kd", ("optimize", "student_kd_onnx_int8")),
    "student_kd_aoti": ("student_kd", ("optimize", "student_kd_aoti")),
}
DATA_STAGES = ("prepare", "clean", "augment", "compress")


def source_of(name: str) -> str | None:
    """The model `name` was derived from (teacher for student_kd, ...), or None."""
    return LINEAGE.get(name, (None, ()))[0]


def _window(name: str, metrics: dict[str, dict]) -> dict | None:
    """The figures of the window that made `name` from its source. Metrics written before
    the teacher had a window of its own charge it its whole train stage, as they did then."""
    if name not in LINEAGE:
        return None
    found = _get(metrics, *LINEAGE[name][1])
    if found is None and name == "teacher":
        found = _get(metrics, "train", "energy")
    if found is None and name == "student_kd_int8":  # optimize before pruning existed
        found = _get(metrics, "optimize", "energy")
    return found if isinstance(found, dict) else None


def own_energy(name: str, metrics: dict[str, dict], key: str = "energy_j") -> float | None:
    """J (`key`: gross energy_j or active_energy_j) of the window that made `name`."""
    window = _window(name, metrics)
    return None if window is None else window.get(key)


def modes_of(stages: list[str], metrics: dict[str, dict]) -> set[str]:
    """The CodeCarbon modes the stages' energy figures were measured in."""
    return {
        str(_get(metrics, s, "energy", "tracking_mode") or "machine")
        for s in stages
        if _get(metrics, s, "energy") is not None
    }


def data_energy(metrics: dict[str, dict], key: str = "energy_j") -> float | None:
    """J of the data stages (prepare, clean, augment, compress), shared by every model."""
    parts = [_get(metrics, s, "energy", key) for s in DATA_STAGES if s in metrics]
    return sum(parts) if parts and all(p is not None for p in parts) else None


def energy_to_obtain(name: str, metrics: dict[str, dict]) -> dict[str, Any]:
    """J spent to obtain a model: its own window plus those of the models it comes from.

    One boundary for every model: the window from building (or loading) the model to its
    saved file, training included (teacher: train; students: their distill fit; derived
    models: their optimize step). The distilled student is charged the teacher's window,
    int8 and pruned models that of the student they come from. Stage set-up and evaluation
    are outside every window (each stage's `outside_tasks`); the data stages, shared by all
    models, are the separate `data_j`. Gross and active (above idle) energy are given;
    None if a part is unknown, or if the parts were measured in different CodeCarbon modes
    (`mixed_modes` then names them).
    """
    chain, node = [], name
    while node is not None:
        chain.append(node)
        node = source_of(node)
    stages = sorted({LINEAGE[n][1][0] for n in chain if n in LINEAGE})
    modes = modes_of(stages, metrics)
    out: dict[str, Any] = {"mixed_modes": ",".join(sorted(modes)) if len(modes) > 1 else None}
    for key, own_key, total_key in (
        ("energy_j", "own_j", "obtain_j"),
        ("active_energy_j", "own_active_j", "obtain_active_j"),
    ):
        parts = [own_energy(n, metrics, key) for n in chain]
        out[own_key] = parts[0]
        ok = all(p is not None for p in parts) and out["mixed_modes"] is None
        out[total_key] = sum(parts) if ok else None
    return out


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
    "energy_per_1k_std_j",
    "energy_repeats",
)


def model_rows(metrics: dict[str, dict], total_inferences: int) -> list[dict[str, Any]]:
    """One row per evaluated model, with quality, size, speed, memory and energy (gross and
    active: to obtain, per 1,000 inferences, and in total with `total_inferences`)."""
    rows = []
    data_j, data_active = data_energy(metrics), data_energy(metrics, "active_energy_j")
    for name, m in (_get(metrics, "evaluate", "models") or {}).items():
        if "skipped" in m:  # not made: see not_made()
            continue
        e = energy_to_obtain(name, metrics)
        row = {"model": name, "backend": m.get("backend", ""), "source": source_of(name)}
        row["arch"] = m.get("arch", "cnn")  # records made before architectures were chosen
        row["device"] = m.get("device")  # where it ran inference (older records: unknown)
        row.update(runtime_of(row["backend"], name, m))
        row.update({k: m.get(k) for k in (*QUALITY_KEYS, *SPEED_KEYS)})
        row["size_kb"] = m["size_bytes"] / 1024 if m.get("size_bytes") is not None else None
        per_1k, act_1k = m.get("energy_per_1k_j"), m.get("active_energy_per_1k_j")
        row.update(
            energy_per_1k_j=per_1k,
            active_energy_per_1k_j=act_1k,
            train_j=e["own_j"],
            obtain_j=e["obtain_j"],
            obtain_active_j=e["obtain_active_j"],
            total_j=_total(e["obtain_j"], per_1k, total_inferences),
            total_active_j=_total(e["obtain_active_j"], act_1k, total_inferences),
            data_j=data_j,
            data_active_j=data_active,
            mixed_modes=e["mixed_modes"],
        )
        rows.append(row)
    return rows


def not_made(metrics: dict[str, dict]) -> list[str]:
    """One sentence per model an optimization could not make, with the reason."""
    models = _get(metrics, "evaluate", "models") or {}
    return [
        f"{name} [{m.get('backend', '')}] was not made: {m['skipped']}."
        for name, m in models.items()
        if "skipped" in m
    ]


def _total(obtain: float | None, per_1k: float | None, inferences: int) -> float | None:
    if obtain is None or per_1k is None:
        return None
    return obtain + per_1k * inferences / 1000


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
        idle = e.get("idle") or {}
        rows.append(
            {
                "stage": stage,
                "energy_j": e.get("energy_j"),
                "active_energy_j": e.get("active_energy_j"),
                "idle_power_w": idle.get("power_w"),
                "idle_cpu_power_std_w": idle.get("cpu_power_std_w"),
                "idle_window_s": idle.get("window_s"),
                "tracking_mode": e.get("tracking_mode", "machine"),
                "cpu_j": e.get("cpu_j"),
                "gpu_j": e.get("gpu_j"),
                "ram_j": e.get("ram_j"),
                "emissions_g": e.get("emissions_g"),
                "duration_s": e.get("duration_s"),
                "source": ", ".join(f"{k}={v}" for k, v in src.items() if v != "absent"),
            }
        )
    return rows
