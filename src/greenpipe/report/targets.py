"""The efficiency targets: does the int8 pruned distilled student keep >= 97% of the teacher's
accuracy with <= 10% of its parameters, <= 25% of its energy per inference and <= 25% of its
latency? Each criterion is a ratio candidate / teacher on the evaluate stage's figures."""

from __future__ import annotations

from typing import Any

from greenpipe.report.devices import DEVICE_BOUND, across_flag

CANDIDATE = "student_kd_pruned_int8"
REFERENCE = "teacher"
# (criterion, row key, ">=" or "<=", threshold on candidate / teacher)
CRITERIA = (
    ("test accuracy", "accuracy", ">=", 0.97),
    ("parameters", "params", "<=", 0.10),
    ("energy per 1,000 inferences", "energy_per_1k_j", "<=", 0.25),
    ("latency p50, batch 1", "latency_p50_ms", "<=", 0.25),
    ("latency p50, larger batch", "latency_batch_p50_ms", "<=", 0.25),
)


def _verdict(ratio: float | None, op: str, threshold: float) -> str:
    if ratio is None:
        return "not measured"
    ok = ratio >= threshold if op == ">=" else ratio <= threshold
    return "met" if ok else "NOT met"


def target_rows(rows: list[dict[str, Any]], candidate: str = CANDIDATE) -> list[dict[str, Any]]:
    """One row per (backend, criterion): teacher and candidate values, the ratio, the target
    ("<= 0.25"), the verdict ("met", "NOT met", "not measured") and, for a speed or energy
    criterion whose two models ran on different devices, `across` ("across devices (cpu vs
    cuda)"; else "")."""
    by = {(r["model"], r.get("backend", "")): r for r in rows}
    out = []
    for backend in sorted({r.get("backend", "") for r in rows}):
        ref, cand = by.get((REFERENCE, backend)), by.get((candidate, backend))
        if ref is None or cand is None:
            continue
        for label, key, op, threshold in CRITERIA:
            t, c = ref.get(key), cand.get(key)
            ratio = c / t if t and c is not None else None
            out.append(
                {
                    "backend": backend,
                    "model": candidate,
                    "criterion": label,
                    "teacher": t,
                    "candidate": c,
                    "ratio": ratio,
                    "target": f"{op} {threshold:g}",
                    "verdict": _verdict(ratio, op, threshold),
                    "across": across_flag(cand, ref) if key in DEVICE_BOUND else "",
                }
            )
    return out


def target_notes(targets: list[dict[str, Any]], rows: list[dict[str, Any]]) -> list[str]:
    """One sentence per backend: how many targets were met, and for each missed one the
    figures that explain it (e.g. int8 slower than its float parent at batch 1)."""
    by = {(r["model"], r.get("backend", "")): r for r in rows}
    if not targets:
        return [f"No {CANDIDATE} and {REFERENCE} evaluated side by side: nothing to check."]
    notes = []
    for backend in sorted({t["backend"] for t in targets}):
        mine = [t for t in targets if t["backend"] == backend]
        met = sum(t["verdict"] == "met" for t in mine)
        missed = [t for t in mine if t["verdict"] != "met"]
        text = f"{backend}: {mine[0]['model']} meets {met} of {len(mine)} targets"
        for t in missed:
            ratio = "n/a" if t["ratio"] is None else f"{t['ratio']:.3f}"
            text += f"; {t['criterion']} {t['verdict']} (ratio {ratio}, target {t['target']})"
        notes.append(text + "." + _slower_than_float(by, mine[0]["model"], backend))
    return notes


def _slower_than_float(by: dict, candidate: str, backend: str) -> str:
    """Why batch-1 latency can miss: the int8 model is no faster than its float parent."""
    q, f = by.get((candidate, backend)), by.get((candidate.removesuffix("_int8"), backend))
    if not q or not f or q.get("latency_p50_ms") is None or f.get("latency_p50_ms") is None:
        return ""
    if q["latency_p50_ms"] < f["latency_p50_ms"]:
        return ""
    return (
        f" At batch 1 the int8 model ({q['latency_p50_ms']:.3f} ms) is no faster than its "
        f"float parent ({f['latency_p50_ms']:.3f} ms): on a model this small the fixed cost "
        "per call (framework dispatch, quantize/dequantize) outweighs the arithmetic saved."
    )
