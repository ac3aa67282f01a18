"""Runtime and precision as report dimensions: how much faster int8 runs than float in each
runtime (and than its float parent as the framework runs it), the int8 speed target, and
which runtime and precision give the most accuracy per joule of inference.

Speed is the median latency at the larger batch (`latency_batch_p50_ms`), where int8
kernels have work enough to pay for quantizing and dequantizing activations.
"""

from __future__ import annotations

from typing import Any

from greenpipe.evaluate.runtime import describe
from greenpipe.report.devices import across_flag
from greenpipe.report.pareto import pareto_front

Row = dict[str, Any]
RUNTIMES = "Inference runtimes and precision"
PARENT = "student_kd"  # the float parent of every int8 student in a runtime
INT8_TARGET = 2.0  # int8 at least this many times faster than its float parent (larger batch)
INT8 = ("student_kd_int8", "student_kd_onnx_int8")  # the KD student's int8 forms
FLOATS = (PARENT, "student_kd_onnx", "student_kd_aoti")  # ... and its float ones
KEY = "latency_batch_p50_ms"


def label(row: Row) -> str:
    """ "torch onnxruntime int8": the framework, runtime and precision of a model row, with
    ", trained in bf16" when its weights were not trained in fp32."""
    trained = row.get("trained_precision", "fp32")
    tail = "" if trained == "fp32" else f", trained in {trained}"
    return f"{row.get('backend', '')} {row.get('runtime')} {row.get('precision')}{tail}"


def runtime_of(backend: str, name: str, record: dict[str, Any]) -> dict[str, str]:
    """{"runtime", "precision", "trained_precision"} of an evaluated model; records written
    before evaluate named them are told by the model's name (and were trained in fp32)."""
    if record.get("runtime") and record.get("precision"):
        keys = ("runtime", "precision", "trained_precision")
        return {**describe(backend, {}), **{k: record[k] for k in keys if k in record}}
    return describe(backend, {"quantized": "int8" in name})


def _speedup(slow: Row | None, fast: Row | None) -> float | None:
    if slow is None or fast is None or not slow.get(KEY) or not fast.get(KEY):
        return None
    return slow[KEY] / fast[KEY]


def speed_ratios(rows: list[Row]) -> list[dict[str, Any]]:
    """Per backend and int8 model: {"backend", "model", "label", "same_runtime" (float in the
    same runtime / int8 latency), "vs_parent" (float parent's / int8 latency), "batch",
    "parent_across" ("across devices (cpu vs cuda)" when the parent ran elsewhere, else "")}."""
    out = []
    for backend in sorted({r.get("backend", "") for r in rows}):
        mine = {r["model"]: r for r in rows if r.get("backend", "") == backend}
        for int8 in INT8:
            q = mine.get(int8)
            if q is None:
                continue
            base = next(
                (f for f in FLOATS if (mine.get(f) or {}).get("runtime") == q.get("runtime")), None
            )
            out.append(
                {
                    "backend": backend,
                    "model": int8,
                    "label": label(q),
                    "same_runtime": _speedup(mine.get(base) if base else None, q),
                    "vs_parent": _speedup(mine.get(PARENT), q),
                    "batch": q.get("latency_batch_size"),
                    "int8_ms": q.get(KEY),
                    "parent_ms": (mine.get(PARENT) or {}).get(KEY),
                    "float_ms": (mine.get(base) or {}).get(KEY) if base else None,
                    "parent_across": across_flag(q, mine.get(PARENT) or {}),
                }
            )
    return out


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.2f}x"


def _ms(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f} ms"


def _figures(r: dict[str, Any]) -> str:
    """ "torch onnxruntime int8 2.94x vs the float parent (0.161 ms against 0.474 ms), 0.44x
    vs float in its runtime (0.070 ms)": the same-runtime part only where that float exists."""
    across = f", {r['parent_across']}" if r.get("parent_across") else ""
    out = (
        f"{r['label']} {_fmt(r['vs_parent'])} vs the float parent "
        f"({_ms(r['int8_ms'])} against {_ms(r['parent_ms'])}{across})"
    )
    if r["same_runtime"] is not None:
        out += f", {_fmt(r['same_runtime'])} vs float in its runtime ({_ms(r['float_ms'])})"
    return out


def target_sentences(rows: list[Row]) -> list[str]:
    """Per backend: whether an int8 student is >= INT8_TARGET x faster than its float parent
    at the larger batch in some runtime; when missed, why, with the figures."""
    ratios, out = speed_ratios(rows), []
    for backend in sorted({r["backend"] for r in ratios}):
        mine = [r for r in ratios if r["backend"] == backend]
        met = [r for r in mine if (r["vs_parent"] or 0) >= INT8_TARGET]
        figures = "; ".join(_figures(r) for r in mine)
        batch = mine[0]["batch"]
        head = f"{backend}: int8 >= {INT8_TARGET:g}x faster than its float parent at batch {batch}"
        if met:
            verdict = f"{head}: met by {', '.join(r['label'] for r in met)}"
        else:
            verdict = (
                f"{head}: missed; int8 pays a quantize and a dequantize per layer boundary, "
                "which a model this small does not earn back in cheaper matrix products"
            )
        out.append(f"{verdict} ({figures}).")
    return out


def runtime_findings(rows: list[Row]) -> list[tuple[str, str]]:
    """(group, sentence) pairs of the int8 target and the accuracy per joule."""
    return [(RUNTIMES, t) for t in target_sentences(rows) + accuracy_per_joule(rows)]


def accuracy_per_joule(rows: list[Row]) -> list[str]:
    """Per backend: the runtime and precision with the most accuracy per J of inference
    (accuracy / J per 1,000 inferences), and the labels on the accuracy-energy front."""
    out = []
    for backend in sorted({r.get("backend", "") for r in rows}):
        mine = [
            r
            for r in rows
            if r.get("backend", "") == backend
            and r.get("accuracy") is not None
            and r.get("energy_per_1k_j")
        ]
        if not mine:
            continue
        top = max(mine, key=lambda r: r["accuracy"] / r["energy_per_1k_j"])
        on = pareto_front([(r["accuracy"], r["energy_per_1k_j"]) for r in mine])
        front = ", ".join(f"{r['model']} ({label(r)})" for r, o in zip(mine, on, strict=True) if o)
        per_j = top["accuracy"] / top["energy_per_1k_j"]
        devices = sorted({r["device"] for r in mine if r.get("device")})
        across = f" (across devices: {', '.join(devices)})" if len(devices) > 1 else ""
        out.append(
            f"{backend}: most accuracy per joule of inference: {top['model']} ({label(top)}, "
            f"{per_j:.3g} accuracy per J per 1,000 inferences); on the accuracy-energy front: "
            f"{front}{across}."
        )
    return out
