"""The columns of every report table: (row key, header, format). Energies and emissions go
through `units.si` (SI prefixes, 3 significant digits); headers name the quantity, cells
carry their unit."""

from __future__ import annotations

from greenpipe.report.render import Column
from greenpipe.report.targets import CRITERIA
from greenpipe.report.units import si, si_pm


def _interval(lo: str, hi: str, fmt: str = "{:.3f}"):
    def show(row: dict) -> str:
        if row.get(lo) is None or row.get(hi) is None:
            return "n/a"
        return f"[{fmt.format(row[lo])}, {fmt.format(row[hi])}]"

    return show


def si_of(key: str, unit: str = "J", sign: bool = False):
    """The row's `key` with an SI prefix ("44.3 mJ"), "n/a" if missing."""
    return lambda row: si(row.get(key), unit, sign=sign)


def _mean_std(mean: str, std: str, unit: str = "J"):
    """ "mean ± sample std" with SI prefixes."""
    return lambda row: si_pm(row.get(mean), row.get(std), unit)


def _gross_active(gross: str, active: str, unit: str = "J"):
    """ "gross / active" with SI prefixes, or why there is no figure."""

    def show(row: dict) -> str:
        if row.get("mixed_modes") and row.get(gross) is None:
            return f"refused: mixes {row['mixed_modes']} modes"
        return f"{si(row.get(gross), unit)} / {si(row.get(active), unit)}"

    return show


def _before_after(key: str, fmt: str | None = None, unit: str = "J"):
    """ "before -> after": through `fmt` ("{:.1f}"), or with SI prefixes of `unit`."""

    def one(v: float | None) -> str:
        if fmt is None:
            return si(v, unit)
        return fmt.format(v) if v is not None else "n/a"

    return lambda row: f"{one(row.get(f'{key}_before'))} -> {one(row.get(f'{key}_after'))}"


# the wide models table, split in three that each fit a 1280-px page
QUALITY_COLS: list[Column] = [
    ("model", "model", "{}"),
    ("backend", "backend", "{}"),
    ("arch", "architecture", "{}"),
    ("trained_precision", "trained in", "{}"),
    ("accuracy", "accuracy", "{:.4f}"),
    ("accuracy_ci", "accuracy CI", _interval("accuracy_ci_low", "accuracy_ci_high")),
    ("macro_f1", "macro-F1", "{:.4f}"),
    ("macro_f1_ci", "F1 CI", _interval("macro_f1_ci_low", "macro_f1_ci_high")),
]
SPEED_COLS: list[Column] = [
    ("model", "model", "{}"),
    ("backend", "backend", "{}"),
    ("runtime", "runtime", "{}"),
    ("device", "device", "{}"),
    ("precision", "precision", "{}"),
    ("params", "params", "{:,.0f}"),
    ("size_kb", "size (KiB)", "{:.1f}"),
    ("latency_p50_ms", "p50 (ms)", "{:.3f}"),
    ("latency_p95_ms", "p95 (ms)", "{:.3f}"),
    ("latency_batch_p50_ms", "p50 batch (ms)", "{:.3f}"),
    ("throughput_sps", "throughput (/s)", "{:,.0f}"),
    ("memory_inference_peak_mb", "inference peak (MiB)", "{:.1f}"),
    ("flag", "flag", "{}"),
]
ENERGY_COLS: list[Column] = [
    ("model", "model", "{}"),
    ("backend", "backend", "{}"),
    ("energy_per_1k", "per 1k inferences", _mean_std("energy_per_1k_j", "energy_per_1k_std_j")),
    (
        "active_per_1k",
        "active per 1k",
        _mean_std("active_energy_per_1k_j", "active_energy_per_1k_std_j"),
    ),
    ("train_j", "own window", si_of("train_j")),
    ("obtain", "to obtain (gross / active)", _gross_active("obtain_j", "obtain_active_j")),
    ("total", "total (gross / active)", _gross_active("total_j", "total_active_j")),
]
STAGE_COLS: list[Column] = [
    ("stage", "stage", "{}"),
    ("energy_j", "energy", si_of("energy_j")),
    ("active_energy_j", "active", si_of("active_energy_j")),
    ("tracking_mode", "mode", "{}"),
    ("cpu_j", "CPU", si_of("cpu_j")),
    ("gpu_j", "GPU", si_of("gpu_j")),
    ("ram_j", "RAM", si_of("ram_j")),
    ("emissions_g", "emissions", si_of("emissions_g", "gCO2e")),
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
    ("energy_per_1k_j", "per 1k inferences", _before_after("energy_per_1k_j")),
    ("flag", "verdict", "{}"),
]


def _target_value(key: str):
    """A target row's teacher or candidate figure in the unit of its criterion."""
    units = {label: k for label, k, _, _ in CRITERIA}

    def show(row: dict) -> str:
        value, what = row.get(key), units.get(row.get("criterion"), "")
        if value is None:
            return "n/a"
        if what.endswith("_j"):
            return si(value, "J")
        if what.endswith("_ms"):
            return f"{value:#.3g} ms"
        return f"{value:,.0f}" if what == "params" else f"{value:.4f}"

    return show


TARGET_COLS: list[Column] = [
    ("backend", "backend", "{}"),
    ("criterion", "criterion", "{}"),
    ("teacher", "teacher", _target_value("teacher")),
    ("candidate", "candidate", _target_value("candidate")),
    ("ratio", "candidate / teacher", "{:.3f}"),
    ("target", "target", "{}"),
    ("verdict", "verdict", lambda r: ", ".join(filter(None, (r["verdict"], r.get("across"))))),
]
DISTILL_COLS: list[Column] = [
    ("backend", "backend", "{}"),
    ("kd_accuracy", "KD accuracy", "{:.4f}"),
    ("scratch_accuracy", "scratch accuracy", "{:.4f}"),
    ("accuracy_gain", "KD - scratch", "{:+.4f}"),
    ("kd_own_j", "KD own", si_of("kd_own_j")),
    ("teacher_j", "teacher charged", si_of("teacher_j")),
    ("kd_obtain_j", "KD to obtain", si_of("kd_obtain_j")),
    ("scratch_obtain_j", "scratch to obtain", si_of("scratch_obtain_j")),
    ("extra_j", "extra for KD", si_of("extra_j", sign=True)),
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
    ("obtain", "to obtain (gross / active)", _gross_active("obtain_j", "obtain_active_j")),
    ("energy_per_1k_j", "per 1k inferences", si_of("energy_per_1k_j")),
    ("total", "total (gross / active)", _gross_active("total_j", "total_active_j")),
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
    ("compress_j", "to compress", si_of("compress_j")),
    ("accuracy", "teacher accuracy", "{:.4f}"),
    ("accuracy_change_pts", "vs uncompressed (pt)", "{:+.2f}"),
    ("train_j", "teacher training", si_of("train_j")),
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
