"""The report's note text: what its figures mean, where they come from, and what is missing.

Each returns text that render.py lays out as the page's notes (or a table's introduction).
"""

from __future__ import annotations

from greenpipe.report.tables import not_made
from greenpipe.report.units import RULE, si


def notes_for(stages: list[dict]) -> list[str]:
    """The page's notes for the rows of the energy-per-stage table: the energy sources, what
    'measured', 'to obtain', 'active', CI and the flags mean."""
    sources = sorted({r["source"] for r in stages if r["source"]})
    notes = [RULE, *(f"Energy source: {s}." for s in sources)]
    notes.append(
        "'measured' = read from a hardware energy counter (RAPL, NVML); 'estimated' = "
        "CodeCarbon's power model (CPU TDP x load, RAM size). Figures are as reported, "
        "not smoothed."
    )
    notes.append(
        "To obtain = the window that made the model (from building or loading it to its "
        "saved file) plus those of the models it comes from: the teacher's for distilled "
        "students, the student's for pruned and int8 models. Stage set-up and evaluation are "
        "outside every window; the data stages, shared by all models, are given apart. "
        "The report stage's own energy is in metrics/report.json."
    )
    notes.extend(idle_notes(stages))
    notes.append(
        "CI: percentile bootstrap interval of the test accuracy / macro-F1 (evaluate.confidence, "
        "evaluate.bootstrap_samples resamples, seeded). Per 1k inferences: mean ± sample "
        "standard deviation over evaluate.energy_repeats CodeCarbon tasks."
    )
    notes.append(
        "tensorflow: int8 models run in the TFLite interpreter, float models in Keras "
        "(tf.function), so part of an int8 model's speed-up is the lighter runtime, not only "
        "the int8 arithmetic."
    )
    notes.append(
        "flag: an optimized model that is not at least 5% smaller, or not at least 5% faster "
        "(median latency at batch 1 and at the larger batch) than the model it came from, "
        "is flagged, not counted as a gain."
    )
    return notes


def idle_notes(stages: list[dict]) -> list[str]:
    """What the active figures subtract: the idle window's power and spread, per mode."""
    seen = {}
    for r in stages:
        if r.get("idle_power_w") is not None:
            seen.setdefault(r["tracking_mode"], r)
    out = [
        f"Active = gross - idle power x duration, per component, never below zero. Idle "
        f"({mode} mode): {r['idle_power_w']:.2f} W (CPU spread ± "
        f"{r['idle_cpu_power_std_w']:.2f} W) over a {r['idle_window_s']:.1f} s quiet window."
        for mode, r in sorted(seen.items())
    ]
    return out or ["No idle baseline was recorded: active energy is not available."]


def energy_intro(models: list[dict], total_inferences: int) -> str:
    """What the energy table's totals assume, and the data stages' energy (the same for every
    model, so one figure here rather than a column)."""
    text = (
        f"Gross energy, and active energy (above the idle baseline). Total = to obtain + "
        f"{total_inferences:,} inferences (report.total_inferences)."
    )
    if models:
        data = f"{si(models[0].get('data_j'), 'J')} / {si(models[0].get('data_active_j'), 'J')}"
        text += f" The data stages, shared by every model and in no figure here: {data}."
    return text


def skipped_notes(per_backend: dict, stage_metrics: dict) -> list[str]:
    """Why each model that was not made is missing from the tables."""
    return [n for m in per_backend.values() for n in not_made({**stage_metrics, **m})]
