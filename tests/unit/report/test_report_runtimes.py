"""Runtime and precision as report dimensions: int8 speed ratios, the int8 target's verdict
with its figures, and the runtime and precision with the most accuracy per joule."""

from __future__ import annotations

import pytest

from greenpipe.report.findings import findings
from greenpipe.report.runtimes import RUNTIMES as RUNTIMES_GROUP
from greenpipe.report.runtimes import accuracy_per_joule, speed_ratios, target_sentences


def _row(model, runtime, precision, batch_ms, acc=0.95, per_1k=1.0, backend="torch"):
    return {
        "model": model,
        "backend": backend,
        "runtime": runtime,
        "precision": precision,
        "latency_batch_p50_ms": batch_ms,
        "latency_batch_size": 32,
        "accuracy": acc,
        "energy_per_1k_j": per_1k,
    }


# torch as greenpipe makes it: int8 is ONNX Runtime's (student_kd_int8), beside the float
# student in eager torch and in ONNX Runtime
ROWS = [
    _row("student_kd", "eager", "fp32", 0.27, 0.95, 2.0),
    _row("student_kd_int8", "onnxruntime", "int8", 0.13, 0.949, 0.6),
    _row("student_kd_onnx", "onnxruntime", "fp32", 0.09, 0.95, 0.5),
]
# Keras: TFLite int8 has no float model in its own runtime
TF = [
    _row("student_kd", "keras", "fp32", 0.8, backend="tensorflow"),
    _row("student_kd_int8", "tflite", "int8", 0.04, backend="tensorflow"),
]


def test_speed_ratios_per_runtime_and_against_the_float_parent():
    by = {(r["backend"], r["model"]): r for r in speed_ratios(ROWS + TF)}
    q = by["torch", "student_kd_int8"]
    assert q["same_runtime"] == pytest.approx(0.09 / 0.13)  # against student_kd_onnx
    assert q["vs_parent"] == pytest.approx(0.27 / 0.13)
    assert q["label"] == "torch onnxruntime int8"
    tflite = by["tensorflow", "student_kd_int8"]
    assert tflite["vs_parent"] == pytest.approx(20.0) and tflite["same_runtime"] is None


def test_the_int8_target_is_met_or_missed_with_the_figures():
    tf, torch = target_sentences(ROWS + TF)  # sorted by backend
    assert tf.startswith("tensorflow: int8 >= 2x faster than its float parent at batch 32: met")
    assert "tensorflow tflite int8 20.00x vs the float parent (0.040 ms against 0.800 ms)" in tf
    assert "in its runtime" not in tf  # no float TFLite model to compare with
    assert torch.startswith("torch: int8 >= 2x faster than its float parent at batch 32: met by")
    assert "torch onnxruntime int8 2.08x vs the float parent" in torch
    assert "0.69x vs float in its runtime (0.090 ms)" in torch
    slow = [
        r if r["model"] != "student_kd_int8" else {**r, "latency_batch_p50_ms": 0.2} for r in ROWS
    ]
    (missed,) = target_sentences(slow)
    assert ": missed;" in missed and "(0.200 ms against 0.270 ms)" in missed


def test_most_accuracy_per_joule_names_runtime_and_precision():
    (text,) = accuracy_per_joule(ROWS)
    assert text.startswith(
        "torch: most accuracy per joule of inference: student_kd_onnx (torch onnxruntime fp32"
    )
    assert "front: student_kd_onnx (torch onnxruntime fp32)." in text


def test_findings_carry_the_runtime_group():
    groups = {f.group for f in findings(ROWS)}
    assert RUNTIMES_GROUP in groups


def test_labels_and_records_carry_the_training_precision():
    from greenpipe.report.runtimes import label, runtime_of

    bf16 = {**ROWS[2], "trained_precision": "bf16"}
    assert label(bf16) == "torch onnxruntime fp32, trained in bf16"
    assert label({**ROWS[2], "trained_precision": "fp32"}) == "torch onnxruntime fp32"
    record = {"runtime": "onnxruntime", "precision": "int8", "trained_precision": "bf16"}
    assert runtime_of("torch", "student_kd_int8", record) == record
    # records from before training precision existed: all such models trained in fp32
    old = runtime_of("torch", "student_kd_int8", {})
    assert old == {"runtime": "eager", "precision": "int8", "trained_precision": "fp32"}
