"""greenpipe.report.headline and summary: the DVC headline, models.csv, the Prefect artifact
and the end-of-run table, from report rows."""

from __future__ import annotations

import csv
import io

from greenpipe.report import headline, summary


def _row(model: str, backend: str, acc: float, obtain: float | None) -> dict:
    return {
        "model": model,
        "backend": backend,
        "accuracy": acc,
        "obtain_j": obtain,
        "obtain_active_j": None if obtain is None else obtain / 10,
        "energy_per_1k_j": 0.0736,
        "active_energy_per_1k_j": 0.0189,
        "params": 1000,
    }


ROWS = [
    _row(m, b, 0.9 + i / 100, 100.0 * (i + 1))
    for b in ("torch", "tensorflow")
    for i, m in enumerate(
        ["teacher", "student_kd", "student_scratch", "student_kd_int8", "student_kd_pruned"]
    )
]
TOTALS = {"energy_j": 2993.9, "active_energy_j": 368.1, "emissions_g": 0.0466, "duration_s": 1}


def test_headline_keeps_the_trained_models_and_the_totals_only():
    top = headline.headline(ROWS, TOTALS)
    assert set(top) == {"torch", "tensorflow", "total"}
    assert top["torch"] == {
        "teacher": {"acc": 0.9, "obtain_j": 100.0},
        "kd": {"acc": 0.91, "obtain_j": 200.0},
        "scratch": {"acc": 0.92},
    }
    assert top["total"] == {"energy_j": 2993.9, "active_j": 368.1, "emissions_g": 0.0466}


def test_headline_leaves_out_unknown_figures():
    rows = [_row("student_kd", "torch", 0.9, None)]
    assert headline.headline(rows, TOTALS)["torch"] == {"kd": {"acc": 0.9}}


def test_models_csv_has_one_row_per_model_and_backend():
    text = headline.models_csv(ROWS)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == len(ROWS) and list(rows[0]) == list(headline.CSV_COLUMNS)
    kd = next(r for r in rows if r["model"] == "student_kd@torch")
    assert float(kd["accuracy"]) == 0.91 and float(kd["obtain_j"]) == 200.0
    blank = headline.models_csv([_row("teacher", "torch", 0.9, None)])
    assert "teacher@torch,torch,0.9,,," in blank


def test_stage_markdown_says_how_each_stage_came_to_be_with_readable_units():
    blocks = {
        "prepare": [{"energy": {"energy_j": 0.0443, "active_energy_j": 0.0, "duration_s": 0.26}}],
        "train@torch": [{"energy": {"energy_j": 1234.0, "emissions_g": 0.069, "duration_s": 61}}],
    }
    rows = summary.stage_rows(blocks, {"prepare": "Cached", "train@torch": "Completed"})
    text = summary.stage_markdown(rows, "http://127.0.0.1:5000/#/experiments/1/runs/abc", "abc")
    assert "| prepare | up to date | 44.3 mJ | 0 J | n/a | 260 ms |" in text
    assert "| train@torch | ran | 1.23 kJ | n/a | 69.0 mgCO2e | 61.0 s |" in text
    assert "[abc](http://127.0.0.1:5000/#/experiments/1/runs/abc)" in text
    assert text.startswith("# greenpipe experiment: 1.23 kJ over 2 stages")
    rows.append(summary.stage_rows({}, {"report": "Failed"})[0])  # no record: not in the total
    text = summary.stage_markdown(rows, "u", "abc")
    assert text.startswith("# greenpipe experiment: 1.23 kJ over 2 of 3 stages")
    assert "| report | failed | n/a | n/a | n/a | n/a |" in text


def test_model_table_lines_up_each_models_accuracy_and_energy(tmp_path):
    path = tmp_path / "models.csv"
    path.write_text(headline.models_csv(ROWS[:2]))
    lines = summary.model_table(summary.read_models_csv(path)).splitlines()
    assert lines[0].split() == ["model", "accuracy", "J", "to", "obtain", "per", "1k", "inferences"]
    assert lines[2].split()[:4] == ["student_kd@torch", "0.9100", "200", "J"]
    assert len({len(ln) for ln in lines}) == 1  # columns aligned
    assert summary.read_models_csv(tmp_path / "none.csv") == []


def test_variant_markdown_links_each_variant_to_its_mlflow_run():
    rows = [
        {"variant": "a-1", "ok": True, "seconds": 75.0, "reason": "", "url": "http://m/1"},
        {"variant": "b-2", "ok": False, "seconds": 3.2, "reason": "stage x\nfailed", "url": "u"},
    ]
    text = summary.variant_markdown("tiny-abc123", rows)
    assert text.startswith("# greenpipe sweep tiny-abc123: 1/2 variants ok")
    assert "| [a-1](http://m/1) | ok | 75.0 s |  |" in text
    assert "| [b-2](u) | FAILED | 3.20 s | stage x failed |" in text
