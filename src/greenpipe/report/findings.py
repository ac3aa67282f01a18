"""What the experiment found, in plain sentences derived from the report's rows.

Four groups: the best model per criterion (per framework); how many efficiency targets the
candidate meets (`targets`); what each technique bought in accuracy and energy against its
baseline (distillation charged the teacher's training, pruning, int8 quantization, the
student against the teacher), each with the spread the metrics carry; and where the stages'
energy went (active share, idle baseline, components).

Two figures count as apart only beyond their spread: accuracies whose bootstrap CIs do not
overlap, energies per 1,000 inferences further apart than the sum of their sample standard
deviations.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from greenpipe.report.devices import DEVICE_BOUND, across_flag
from greenpipe.report.runtimes import runtime_findings
from greenpipe.report.targets import CANDIDATE, REFERENCE, target_rows
from greenpipe.report.units import ratio, si, si_pm

Row = dict[str, Any]


class Finding(NamedTuple):
    """One sentence under its group's heading."""

    group: str
    text: str


BEST = "Best model per criterion"
TARGETS = "Efficiency targets"
TECHNIQUES = "What each technique bought, against its baseline"
ENERGY = "Where the energy went"


def _accuracy(r: Row) -> str:
    return f"{r['accuracy']:.4f}, CI {_ci(r)}"


def _ci(r: Row) -> str:
    lo, hi = r.get("accuracy_ci_low"), r.get("accuracy_ci_high")
    return "n/a" if lo is None or hi is None else f"{lo:.3f}–{hi:.3f}"


# (what, row key, True if higher is better, the figure as shown)
CRITERIA: tuple[tuple[str, str, bool, Callable[[Row], str]], ...] = (
    ("Most accurate", "accuracy", True, _accuracy),
    (
        "Least energy to obtain (teacher charged to distilled models)",
        "obtain_j",
        False,
        lambda r: si(r["obtain_j"], "J"),
    ),
    (
        "Least energy per 1,000 inferences",
        "energy_per_1k_j",
        False,
        lambda r: si_pm(r["energy_per_1k_j"], r.get("energy_per_1k_std_j"), "J"),
    ),
    (
        "Fastest (median latency, batch 1)",
        "latency_p50_ms",
        False,
        lambda r: f"{r['latency_p50_ms']:#.3g} ms",
    ),
    ("Smallest file", "size_kb", False, lambda r: f"{r['size_kb']:.1f} KiB"),
)
# (technique, model, its baseline)
COMPARISONS = (
    ("Knowledge distillation", "student_kd", "student_scratch"),
    ("Pruning", "student_kd_pruned", "student_kd"),
    ("int8 quantization", "student_kd_int8", "student_kd"),
    ("int8 quantization of the pruned student", "student_kd_pruned_int8", "student_kd_pruned"),
    ("Distilled student against the teacher", "student_kd", "teacher"),
    ("ONNX Runtime against the framework", "student_kd_onnx", "student_kd"),
    ("int8 in ONNX Runtime", "student_kd_onnx_int8", "student_kd_onnx"),
    ("AOTInductor against eager torch", "student_kd_aoti", "student_kd"),
)


def findings(models: list[Row], stages: list[Row] | None = None) -> list[Finding]:
    """The findings of one experiment from its model rows (`tables.model_rows`, one per model
    and backend) and stage rows (`tables.stage_rows`); criteria or comparisons without the
    figures they need are left out."""
    out = [f for c in CRITERIA if (f := best(models, *c)) is not None]
    out += target_findings(models)
    out += [Finding(*f) for f in runtime_findings(models)]
    for technique, model, base in COMPARISONS:
        out += compare(models, technique, model, base)
    return out + energy_findings(stages or [])


def _backends(rows: list[Row]) -> list[str]:
    return sorted({r.get("backend", "") for r in rows})


def best(
    rows: list[Row], what: str, key: str, higher: bool, show: Callable[[Row], str]
) -> Finding | None:
    """The best model(s) on `key` per backend ("torch: a, b (0.9916, ...)"), ties together;
    for accuracy, how many other models' CIs overlap the best one's."""
    parts = []
    for backend in _backends(rows):
        mine = [r for r in rows if r.get("backend", "") == backend and r.get(key) is not None]
        if not mine:
            continue
        top = (max if higher else min)(r[key] for r in mine)
        winners = [r for r in mine if r[key] == top]
        extra = (
            _overlaps(winners[0], [r for r in mine if r not in winners])
            if key == "accuracy"
            else ""
        )
        names = ", ".join(r["model"] for r in winners)
        devices = sorted({r["device"] for r in mine if r.get("device")})
        if key in DEVICE_BOUND and len(devices) > 1:
            extra += f"; across devices ({', '.join(devices)})"
        parts.append(f"{backend} {names} ({show(winners[0])}{extra})")
    return Finding(BEST, f"{what}: " + "; ".join(parts) + ".") if parts else None


def _overlaps(top: Row, others: list[Row]) -> str:
    """ "; not apart from 3 of the 5 others (CIs overlap)", or "" if it is apart from all."""
    near = [r for r in others if _ci_overlap(top, r)]
    if not near:
        return ""
    if len(near) < len(others):
        return f"; CI overlaps {len(near)} of {len(others)} others'"
    return "; CI overlaps the other model's" if len(others) == 1 else "; CI overlaps all others'"


def _ci_overlap(a: Row, b: Row) -> bool | None:
    """True if the accuracy CIs overlap, None if one is missing."""
    keys = ("accuracy_ci_low", "accuracy_ci_high")
    if any(r.get(k) is None for r in (a, b) for k in keys):
        return None
    return (
        a["accuracy_ci_low"] <= b["accuracy_ci_high"]
        and b["accuracy_ci_low"] <= a["accuracy_ci_high"]
    )


def target_findings(models: list[Row]) -> list[Finding]:
    """How many efficiency targets the candidate meets per backend, and the missed ones with
    their ratio candidate / teacher (`targets.CRITERIA`)."""
    rows = target_rows(models)
    parts = []
    for backend in _backends(rows):
        mine = [t for t in rows if t["backend"] == backend]
        missed = [t for t in mine if t["verdict"] != "met"]
        text = f"{backend} meets {len(mine) - len(missed)} of {len(mine)}"
        if missed:
            text += ", missing " + ", ".join(
                f"{t['criterion']} ({ratio(t['candidate'], t['teacher'])}, target {t['target']})"
                for t in missed
            )
        crossed = next((t["across"] for t in mine if t.get("across")), "")
        if crossed:
            text += f" (speed and energy {crossed})"
        parts.append(text)
    if not parts:
        return []
    head = f"{CANDIDATE} against the {REFERENCE}: "
    return [Finding(TARGETS, head + "; ".join(parts) + ".")]


def compare(rows: list[Row], technique: str, model: str, base: str) -> list[Finding]:
    """Per backend with both models: `model` against `base` in accuracy (points, with both
    CIs), energy to obtain (gross difference, active difference), energy per 1,000
    inferences (ratio, with both spreads) and file size (ratio, when it changed)."""
    by = {(r["model"], r.get("backend", "")): r for r in rows}
    out = []
    for backend in _backends(rows):
        m, b = by.get((model, backend)), by.get((base, backend))
        if m is None or b is None:
            continue
        clauses = [
            c for c in (_accuracy_change(m, b), _obtain_change(m, b), _inference_change(m, b)) if c
        ]
        size = ratio(m.get("size_kb"), b.get("size_kb"))
        if size not in ("n/a", "1.00x"):
            clauses.append(f"{size} file size")
        if clauses and across_flag(m, b):
            clauses.append(f"{across_flag(m, b)}: the energy compares the devices too")
        if clauses:
            head = f"{technique} ({model} vs {base}), {backend}: "
            out.append(Finding(TECHNIQUES, head + "; ".join(clauses) + "."))
    return out


def _accuracy_change(m: Row, b: Row) -> str:
    if m.get("accuracy") is None or b.get("accuracy") is None:
        return ""
    verdict = {True: "overlap", False: "are apart", None: "unknown"}[_ci_overlap(m, b)]
    points = (m["accuracy"] - b["accuracy"]) * 100
    change = "0.00" if abs(points) < 0.005 else f"{points:+.2f}"
    return f"{change} pt accuracy (CIs {_ci(m)} vs {_ci(b)} {verdict})"


def _obtain_change(m: Row, b: Row) -> str:
    if m.get("obtain_j") is None or b.get("obtain_j") is None:
        return ""
    extra = []
    if m.get("source") == "teacher" and m.get("train_j") is not None:
        extra.append(f"the teacher's {si(m['obtain_j'] - m['train_j'], 'J')} included")
    if m.get("obtain_active_j") is not None and b.get("obtain_active_j") is not None:
        extra.append(f"active {si(m['obtain_active_j'] - b['obtain_active_j'], 'J', sign=True)}")
    why = f" ({'; '.join(extra)})" if extra else ""
    return f"{si(m['obtain_j'] - b['obtain_j'], 'J', sign=True)} to obtain{why}"


def _inference_change(m: Row, b: Row) -> str:
    a, c = m.get("energy_per_1k_j"), b.get("energy_per_1k_j")
    if a is None or c is None:
        return ""
    sa, sc = m.get("energy_per_1k_std_j"), b.get("energy_per_1k_std_j")
    verdict = ""
    if sa is not None and sc is not None:
        verdict = ", within the spread" if abs(a - c) <= sa + sc else ", beyond the spread"
    return (
        f"{ratio(a, c)} energy per 1,000 inferences "
        f"({si_pm(a, sa, 'J')} vs {si_pm(c, sc, 'J')}{verdict})"
    )


def energy_findings(stages: list[Row]) -> list[Finding]:
    """The stages' energy added up (if measured in one mode): the active share and the idle
    baseline it subtracts, the largest stage, the share of each component."""
    measured = [s for s in stages if s.get("energy_j") is not None]
    if not measured:
        return []
    modes = sorted({s.get("tracking_mode", "machine") for s in measured})
    if len(modes) > 1:
        text = f"The stages were measured in {len(modes)} CodeCarbon modes ({', '.join(modes)})"
        return [Finding(ENERGY, text + ": their energy is not added up.")]
    gross = sum(s["energy_j"] for s in measured)
    out = [Finding(ENERGY, _totals(measured, gross))]
    top = max(measured, key=lambda s: s["energy_j"])
    if gross > 0:
        share = 100 * top["energy_j"] / gross
        text = f"Largest stage: {top['stage']}, {si(top['energy_j'], 'J')} ({share:.0f}% of all)."
        out += [Finding(ENERGY, text), *_components(measured, gross)]
    return out


def _totals(stages: list[Row], gross: float) -> str:
    text = f"The {len(stages)} stages used {si(gross, 'J')} (gross)"
    emissions = [s.get("emissions_g") for s in stages]
    if all(e is not None for e in emissions):
        text += f", {si(sum(emissions), 'gCO2e')}"
    active = [s.get("active_energy_j") for s in stages]
    if gross > 0 and all(a is not None for a in active):
        text += f"; {si(sum(active), 'J')} of it is active ({100 * sum(active) / gross:.0f}%)"
        idle = next((s for s in stages if s.get("idle_power_w") is not None), None)
        if idle is not None:
            text += (
                f", the rest the machine's idle draw of {idle['idle_power_w']:.1f} W "
                f"(CPU spread ± {idle.get('idle_cpu_power_std_w') or 0:.2f} W over a "
                f"{idle.get('idle_window_s') or 0:.1f} s window)"
            )
    return text + "."


def _components(stages: list[Row], gross: float) -> list[Finding]:
    """ "By component: RAM 85%, CPU 15%, GPU 0% (cpu=..., ram=...).", if all are known."""
    shares = []
    for name, key in (("CPU", "cpu_j"), ("GPU", "gpu_j"), ("RAM", "ram_j")):
        parts = [s.get(key) for s in stages]
        if any(p is None for p in parts):
            return []
        shares.append((100 * sum(parts) / gross, name))
    text = ", ".join(f"{name} {share:.0f}%" for share, name in sorted(shares, reverse=True))
    sources = sorted({s["source"] for s in stages if s.get("source")})
    how = f" (as measured: {'; '.join(sources)})" if len(sources) == 1 else ""
    return [Finding(ENERGY, f"By component: {text} of the gross energy{how}.")]
