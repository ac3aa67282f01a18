"""greenpipe.report.findings: what the experiment found, as sentences derived from the rows."""

from __future__ import annotations

import pytest

from greenpipe.report.findings import BEST, ENERGY, TARGETS, TECHNIQUES, findings


def _row(model, backend, acc, obtain, per_1k, size_kb, p50, **extra) -> dict:
    """A model row as tables.model_rows builds it (J), with a CI of ± 0.01."""
    source = {"student_kd": "teacher", "student_kd_int8": "student_kd"}.get(model)
    return {
        "model": model,
        "backend": backend,
        "source": source,
        "accuracy": acc,
        "accuracy_ci_low": acc - 0.01,
        "accuracy_ci_high": acc + 0.01,
        "obtain_j": obtain,
        "obtain_active_j": obtain / 10,
        "train_j": obtain - 100.0 if source == "teacher" else obtain,
        "energy_per_1k_j": per_1k,
        "energy_per_1k_std_j": per_1k / 20,
        "size_kb": size_kb,
        "latency_p50_ms": p50,
        "params": 1000,
        "latency_batch_p50_ms": p50 * 2,
        **extra,
    }


@pytest.fixture
def rows() -> list[dict]:
    return [
        _row("teacher", "torch", 0.972, 100.0, 0.158, 608.0, 0.124, params=155_530),
        _row("student_scratch", "torch", 0.960, 46.2, 0.0766, 89.2, 0.166),
        _row("student_kd", "torch", 0.9916, 231.0, 0.0736, 89.2, 0.102),
        _row("student_kd_int8", "torch", 0.9888, 233.5, 0.111, 27.5, 0.145),
        _row("teacher", "tensorflow", 0.986, 128.0, 0.202, 641.0, 0.664),
        _row("student_kd", "tensorflow", 0.9832, 245.0, 0.120, 122.0, 0.775),
    ]


def _texts(found, group: str) -> list[str]:
    return [f.text for f in found if f.group == group]


def test_best_model_per_criterion_and_framework(rows):
    best = _texts(findings(rows), BEST)
    assert best[0] == (
        "Most accurate: tensorflow teacher (0.9860, CI 0.976–0.996; CI overlaps the other "
        "model's); torch student_kd (0.9916, CI 0.982–1.002; CI overlaps 2 of 3 others')."
    )
    assert best[1].startswith("Least energy to obtain")
    assert "torch student_scratch (46.2 J)" in best[1]
    assert "torch student_kd (73.6 ± 3.68 mJ)" in best[2]
    assert "torch student_kd (0.102 ms)" in best[3]
    assert "tensorflow student_kd (122.0 KiB)" in best[4]


def test_ties_are_named_together_and_missing_figures_skipped(rows):
    rows[1]["accuracy"] = rows[2]["accuracy"]
    for r in rows:
        r["latency_p50_ms"] = None
    best = _texts(findings(rows), BEST)
    assert "torch student_scratch, student_kd (0.9916" in best[0]
    assert not any(t.startswith("Fastest") for t in best)


def test_distillation_is_charged_the_teacher_with_the_spreads(rows):
    kd = next(t for t in _texts(findings(rows), TECHNIQUES) if t.startswith("Knowledge"))
    assert kd == (
        "Knowledge distillation (student_kd vs student_scratch), torch: +3.16 pt accuracy "
        "(CIs 0.982–1.002 vs 0.950–0.970 are apart); +185 J to obtain (the teacher's 100 J "
        "included; active +18.5 J); 0.96x energy per 1,000 inferences (73.6 ± 3.68 mJ vs "
        "76.6 ± 3.83 mJ, within the spread)."
    )


def test_each_technique_against_its_baseline_per_framework(rows):
    techniques = _texts(findings(rows), TECHNIQUES)
    int8 = next(t for t in techniques if t.startswith("int8 quantization (student_kd_int8"))
    assert "-0.28 pt accuracy" in int8 and "overlap" in int8
    assert "+2.50 J to obtain (active +250 mJ)" in int8
    assert "1.51x energy per 1,000 inferences" in int8 and "beyond the spread" in int8
    assert int8.endswith("0.31x file size.")
    heads = [t.split(":")[0] for t in techniques]
    assert heads == [
        "Knowledge distillation (student_kd vs student_scratch), torch",
        "int8 quantization (student_kd_int8 vs student_kd), torch",
        "Distilled student against the teacher (student_kd vs teacher), tensorflow",
        "Distilled student against the teacher (student_kd vs teacher), torch",
    ]  # no pruned models, no tensorflow scratch student: those comparisons are left out


def test_findings_follow_the_figures(rows):
    """Derived, not written down: a worse KD student reads as a loss."""
    rows[2] |= {"accuracy": 0.95, "accuracy_ci_low": 0.94, "accuracy_ci_high": 0.96}
    kd = next(t for t in _texts(findings(rows), TECHNIQUES) if t.startswith("Knowledge"))
    assert "-1.00 pt accuracy (CIs 0.940–0.960 vs 0.950–0.970 overlap)" in kd


def test_missing_figures_drop_their_clause(rows):
    for r in rows:
        r.update(energy_per_1k_std_j=None, accuracy_ci_low=None, obtain_j=None)
    kd = next(t for t in _texts(findings(rows), TECHNIQUES) if t.startswith("Knowledge"))
    assert "CIs n/a vs n/a unknown" in kd and "to obtain" not in kd
    assert "(73.6 mJ vs 76.6 mJ)" in kd


def test_efficiency_targets_in_one_sentence(rows):
    rows.append(_row("student_kd_pruned_int8", "torch", 0.9888, 235.0, 0.110, 14.3, 0.147))
    (text,) = _texts(findings(rows), TARGETS)
    assert text.startswith("student_kd_pruned_int8 against the teacher: torch meets 2 of 5")
    assert "energy per 1,000 inferences (0.70x, target <= 0.25)" in text


STAGES = [
    {
        "stage": "train",
        "energy_j": 300.0,
        "active_energy_j": 30.0,
        "cpu_j": 60.0,
        "gpu_j": 0.0,
        "ram_j": 240.0,
        "emissions_g": 0.005,
        "tracking_mode": "machine",
        "idle_power_w": 20.8,
        "idle_cpu_power_std_w": 0.031,
        "idle_window_s": 5.0,
        "source": "cpu=estimated:cpu_load",
    },
    {
        "stage": "evaluate",
        "energy_j": 700.0,
        "active_energy_j": 90.0,
        "cpu_j": 140.0,
        "gpu_j": 0.0,
        "ram_j": 560.0,
        "emissions_g": 0.011,
        "tracking_mode": "machine",
        "source": "cpu=estimated:cpu_load",
    },
]


def test_where_the_energy_went():
    texts = _texts(findings([], STAGES), ENERGY)
    assert texts == [
        "The 2 stages used 1.00 kJ (gross), 16.0 mgCO2e; 120 J of it is active (12%), the "
        "rest the machine's idle draw of 20.8 W (CPU spread ± 0.03 W over a 5.0 s window).",
        "Largest stage: evaluate, 700 J (70% of all).",
        "By component: RAM 80%, CPU 20%, GPU 0% of the gross energy (as measured: "
        "cpu=estimated:cpu_load).",
    ]


def test_stages_of_two_modes_are_not_added_up():
    mixed = [STAGES[0], {**STAGES[1], "tracking_mode": "process"}]
    (text,) = _texts(findings([], mixed), ENERGY)
    assert text == (
        "The stages were measured in 2 CodeCarbon modes (machine, process): their energy is "
        "not added up."
    )


def test_nothing_measured_nothing_found():
    assert findings([]) == [] and findings([], [{"stage": "x", "energy_j": None}]) == []
