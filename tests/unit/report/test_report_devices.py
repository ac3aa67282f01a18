"""Where each model ran (greenpipe.report.devices): the speed table's device column and its
note, and every comparison between models on different devices marked "across devices"
(optimization flags, technique findings, int8 speed ratios, targets), while comparisons on
one device read as before."""

from __future__ import annotations

from greenpipe.report import columns
from greenpipe.report.devices import across, across_flag, device_note
from greenpipe.report.findings import CRITERIA, best, compare
from greenpipe.report.optimization import flag
from greenpipe.report.render import cell
from greenpipe.report.runtimes import accuracy_per_joule, target_sentences
from greenpipe.report.targets import target_rows


def _row(model, device, ms, per_1k=1.0, size_kb=100.0, acc=0.95, backend="torch"):
    return {
        "model": model,
        "backend": backend,
        "device": device,
        "runtime": "onnxruntime" if "int8" in model else "eager",
        "precision": "int8" if "int8" in model else "fp32",
        "latency_p50_ms": ms,
        "latency_batch_p50_ms": ms,
        "latency_batch_size": 32,
        "energy_per_1k_j": per_1k,
        "size_kb": size_kb,
        "params": 1000,
        "accuracy": acc,
        "accuracy_ci_low": acc - 0.01,
        "accuracy_ci_high": acc + 0.01,
    }


# a GPU run: the float models on CUDA, int8 on the CPU (ONNX Runtime)
GPU = [
    _row("teacher", "cuda", 1.0, 4.0, 1000.0),
    _row("student_kd", "cuda", 0.5, 2.0),
    _row("student_kd_int8", "cpu", 0.2, 0.5, 30.0),
    _row("student_kd_pruned_int8", "cpu", 0.1, 0.4, 10.0),
]
CPU = [{**r, "device": "cpu"} for r in GPU]


def test_across_names_both_devices_only_when_they_differ():
    assert across(GPU[2], GPU[1]) == "cpu vs cuda"
    assert across_flag(GPU[2], GPU[1]) == "across devices (cpu vs cuda)"
    assert across(CPU[2], CPU[1]) is None and across_flag(CPU[2], CPU[1]) == ""
    assert across({"device": None}, GPU[1]) is None  # records from before the device


def test_the_speed_table_shows_the_device_and_says_which_models_ran_where():
    device_col = next(c for c in columns.SPEED_COLS if c[0] == "device")
    assert cell(GPU[2], *device_col[::2]) == "cpu"
    note = device_note(GPU)
    assert note.startswith("The models ran on 2 devices (on cpu: student_kd_int8 [torch]")
    assert "on cuda: teacher [torch], student_kd [torch]" in note and "'across devices'" in note
    assert device_note(CPU) == "" and device_note([]) == ""


def test_an_int8_model_on_another_device_than_its_parent_is_flagged_not_a_gain():
    assert flag(GPU[2], GPU[1]) == "across devices (cpu vs cuda)"
    assert flag(CPU[2], CPU[1]) == ""  # smaller and faster, on one device


def test_technique_findings_mark_comparisons_across_devices():
    (found,) = compare(GPU, "int8 quantization", "student_kd_int8", "student_kd")
    assert "across devices (cpu vs cuda): the energy compares the devices too" in found.text
    (same,) = compare(CPU, "int8 quantization", "student_kd_int8", "student_kd")
    assert "across devices" not in same.text
    energy = next(c for c in CRITERIA if c[1] == "energy_per_1k_j")
    accuracy = next(c for c in CRITERIA if c[1] == "accuracy")
    assert best(GPU, *energy).text.endswith("; across devices (cpu, cuda)).")
    assert "across devices" not in best(CPU, *energy).text
    assert "across devices" not in best(GPU, *accuracy).text  # not a device figure


def test_int8_speed_and_accuracy_per_joule_mark_devices():
    (gpu,) = target_sentences(GPU)
    assert "(0.200 ms against 0.500 ms, across devices (cpu vs cuda))" in gpu
    assert "across devices" not in target_sentences(CPU)[0]
    assert accuracy_per_joule(GPU)[0].endswith("(across devices: cpu, cuda).")
    assert "across devices" not in accuracy_per_joule(CPU)[0]


def test_targets_mark_speed_and_energy_criteria_across_devices():
    rows = {t["criterion"]: t for t in target_rows(GPU)}
    assert rows["energy per 1,000 inferences"]["across"] == "across devices (cpu vs cuda)"
    assert rows["test accuracy"]["across"] == "" and rows["parameters"]["across"] == ""
    verdict = next(c for c in columns.TARGET_COLS if c[0] == "verdict")[2]
    shown = verdict(rows["latency p50, batch 1"])
    assert shown == "met, across devices (cpu vs cuda)"
    assert all(t["across"] == "" for t in target_rows(CPU))
