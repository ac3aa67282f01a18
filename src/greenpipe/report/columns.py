"""The columns of every report table: (row key, header, format)."""

from __future__ import annotations

from greenpipe.report.render import Column


def _interval(lo: str, hi: str, fmt: str = "{:.3f}"):
    def show(row: dict) -> str:
        if row.get(lo) is None or row.get(hi) is None:
            return "n/a"
        return f"[{fmt.format(row[lo])}, {fmt.format(row[hi])}]"

    return show


def _mean_std(mean: str, std: str, fmt: str = "{:.3e}"):
    def show(row: dict) -> str:
        if row.get(mean) is None:
            return "n/a"
        spread = f" ± {fmt.format(row[std])}" if row.get(std) is not None else ""
        return fmt.format(row[mean]) + spread

    return show


def _gross_active(gross: str, active: str, fmt: str = "{:.3e}"):
    """ "gross / active" (J), or why there is no figure."""

    def show(row: dict) -> str:
        if row.get("mixed_modes") and row.get(gross) is None:
            return f"refused: mixes {row['mixed_modes']} modes"
        text = [fmt.format(row[k]) if row.get(k) is not None else "n/a" for k in (gross, active)]
        return " / ".join(text)

    return show


def _before_after(key: str, fmt: str):
    def show(row: dict) -> str:
        b, a = row.get(f"{key}_before"), row.get(f"{key}_after")
        text = [fmt.format(v) if v is not None else "n/a" for v in (b, a)]
        return f"{text[0]} -> {text[1]}"

    return show


MODEL_COLS: list[Column] = [
    ("model", "model", "{}"),
    ("backend", "backend", "{}"),
    ("accuracy", "accuracy", "{:.4f}"),
    ("accuracy_ci", "accuracy CI", _interval("accuracy_ci_low", "accuracy_ci_high")),
    ("macro_f1", "macro-F1", "{:.4f}"),
    ("macro_f1_ci", "F1 CI", _interval("macro_f1_ci_low", "macro_f1_ci_high")),
    ("params", "params", "{:,.0f}"),
    ("size_kb", "size (KiB)", "{:.1f}"),
    ("latency_p50_ms", "p50 (ms)", "{:.3f}"),
    ("latency_p95_ms", "p95 (ms)", "{:.3f}"),
    ("latency_batch_p50_ms", "p50 batch (ms)", "{:.3f}"),
    ("throughput_sps", "throughput (/s)", "{:,.0f}"),
    ("memory_inference_peak_mb", "inference peak (MiB)", "{:.1f}"),
    (
        "energy_per_1k",
        "J / 1k inferences",
        _mean_std("energy_per_1k_j", "energy_per_1k_std_j"),
    ),
    (
        "active_per_1k",
        "active J / 1k",
        _mean_std("active_energy_per_1k_j", "active_energy_per_1k_std_j"),
    ),
    ("train_j", "own training J", "{:.3e}"),
    ("obtain", "J to obtain (gross / active)", _gross_active("obtain_j", "obtain_active_j")),
    (
        "data",
        "data stages J, shared (gross / active)",
        _gross_active("data_j", "data_active_j"),
    ),
    ("total", "total J (gross / active)", _gross_active("total_j", "total_active_j")),
    ("flag", "flag", "{}"),
]
STAGE_COLS: list[Column] = [
    ("stage", "stage", "{}"),
    ("energy_j", "energy (J)", "{:.3e}"),
    ("active_energy_j", "active (J)", "{:.3e}"),
    ("tracking_mode", "mode", "{}"),
    ("cpu_j", "CPU (J)", "{:.3e}"),
    ("gpu_j", "GPU (J)", "{:.3e}"),
    ("ram_j", "RAM (J)", "{:.3e}"),
    ("emissions_g", "gCO2e", "{:.3e}"),
    ("duration_s", "duration (s)", "{:.1f}"),
    ("source", "how measured", "{}"),
]
OPTIMIZATION_COLS: list[Column] = [
    ("model", "model", "{}"),
    ("backend", "backend", "{}"),
    ("source", "from", "{}"),
    ("params", "params", _before_after("params", "{:,}")),
    ("size_kb", "size (KiB)", _before_after("size_kb", "{:.1f}")),
    ("accuracy", "accuracy", _before_after("accuracy", "{:.4f}")),
    ("latency_p50_ms", "p50 batch 1 (ms)", _before_after("latency_p50_ms", "{:.3f}")),
    ("latency_batch_p50_ms", "p50 batch (ms)", _before_after("latency_batch_p50_ms", "{:.3f}")),
    ("energy_per_1k_j", "J / 1k", _before_after("energy_per_1k_j", "{:.2e}")),
    ("flag", "verdict", "{}"),
]
TARGET_COLS: list[Column] = [
    ("backend", "backend", "{}"),
    ("criterion", "criterion", "{}"),
    ("teacher", "teacher", "{:.4g}"),
    ("candidate", "candidate", "{:.4g}"),
    ("ratio", "candidate / teacher", "{:.3f}"),
    ("target", "target", "{}"),
    ("verdict", "verdict", "{}"),
]
DISTILL_COLS: list[Column] = [
    ("backend", "backend", "{}"),
    ("kd_accuracy", "KD accuracy", "{:.4f}"),
    ("scratch_accuracy", "scratch accuracy", "{:.4f}"),
    ("accuracy_gain", "KD - scratch", "{:+.4f}"),
    ("kd_own_j", "KD own J", "{:.3e}"),
    ("teacher_j", "teacher J charged", "{:.3e}"),
    ("kd_obtain_j", "KD J to obtain", "{:.3e}"),
    ("scratch_obtain_j", "scratch J to obtain", "{:.3e}"),
    ("extra_j", "extra J for KD", "{:+.3e}"),
]

POINT_COLS: list[Column] = [
    ("run_name", "run", "{}"),
    ("exp_name", "DVC experiment", "{}"),
    ("seed", "seed", "{}"),
    ("model", "model", "{}"),
    ("backend", "backend", "{}"),
    ("accuracy", "accuracy", "{:.4f}"),
    ("accuracy_ci", "accuracy CI", _interval("accuracy_ci_low", "accuracy_ci_high")),
    ("params", "params", "{:,.0f}"),
    ("obtain", "J to obtain (gross / active)", _gross_active("obtain_j", "obtain_active_j")),
    ("energy_per_1k_j", "J / 1k inferences", "{:.3e}"),
    ("total", "total J (gross / active)", _gross_active("total_j", "total_active_j")),
    ("pareto", "Pareto", lambda r: "yes" if r.get("pareto") else ""),
    ("flag", "flag", "{}"),
]
COMPRESSION_COLS: list[Column] = [
    ("run_name", "run", "{}"),
    ("exp_name", "DVC experiment", "{}"),
    ("seed", "seed", "{}"),
    ("backend", "backend", "{}"),
    ("setting", "compression", "{}"),
    ("ratio", "ratio", "{:.2f}x"),
    ("train_samples", "train samples", "{:,.0f}"),
    ("compress_j", "J to compress", "{:.3e}"),
    ("accuracy", "teacher accuracy", "{:.4f}"),
    ("accuracy_change_pts", "vs uncompressed (pt)", "{:+.2f}"),
    ("train_j", "teacher training J", "{:.3e}"),
    ("verdict", "verdict", "{}"),
]
KD_SEED_COLS: list[Column] = [
    ("backend", "backend", "{}"),
    ("kd_mean", "KD mean accuracy", "{:.4f}"),
    ("scratch_mean", "scratch mean accuracy", "{:.4f}"),
    ("difference", "KD - scratch", "{:+.4f}"),
    ("kd_at_least_scratch", "KD >= scratch at", "{}"),
    ("verdict", "verdict", "{}"),
]


def seed_cols(seeds: list[int]) -> list[Column]:
    """model, backend, one accuracy column per seed, mean, std, n."""
    per_seed: list[Column] = [(f"seed_{s}", f"seed {s}", "{:.4f}") for s in seeds]
    return [
        ("model", "model", "{}"),
        ("backend", "backend", "{}"),
        *per_seed,
        ("mean", "mean", "{:.4f}"),
        ("std", "std", "{:.4f}"),
        ("n", "seeds", "{}"),
    ]
