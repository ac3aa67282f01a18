"""greenpipe.report: table rows from stage metrics, Markdown/HTML pages and the PNG plot."""

from __future__ import annotations

import base64
import copy
import io
import re

import pytest

from greenpipe.report import columns as col
from greenpipe.report.plot import accuracy_energy_png
from greenpipe.report.render import Table, html_page, markdown
from greenpipe.report.tables import energy_to_obtain, model_rows, stage_rows

ESTIMATED = {"cpu": "estimated:cpu_load", "gpu": "absent", "ram": "estimated:ram_size_model"}
TEACHER_J, KD_J, SCRATCH_J, OPT_J = 4e-5, 5e-5, 3e-5, 1e-6


def _energy(kwh: float, source: dict | None = None) -> dict:
    """An energy block shaped like metrics/<stage>.json's."""
    return {
        "energy_j": kwh,
        "cpu_j": kwh / 4,
        "gpu_j": 0.0,
        "ram_j": kwh * 3 / 4,
        "emissions_g": kwh * 0.05,
        "duration_s": 2.0,
        "power_mean_w": 20.0,
        "source": dict(source or ESTIMATED),
    }


def _model(acc: float, per_1k: float, size: int, params: int) -> dict:
    return {
        "accuracy": acc,
        "macro_f1": acc - 0.001,
        "backend": "torch",
        "params": params,
        "size_bytes": size,
        "latency_p50_ms": 0.2,
        "latency_p95_ms": 0.3,
        "throughput_sps": 150000.0,
        "energy_per_1k_j": per_1k,
        "energy_per_1k_std_j": per_1k / 20,
        "accuracy_ci_low": acc - 0.009,
        "accuracy_ci_high": acc + 0.006,
        "inferences": 300000,
    }


@pytest.fixture
def metrics() -> dict[str, dict]:
    """Like {Path(m).stem: json} that pipelines/report.py builds, with round numbers."""
    return {
        "evaluate": {
            "energy": _energy(6e-5),
            "models": {
                "teacher": _model(0.9889, 2e-7, 623016, 155530),
                "student_scratch": _model(0.97, 5e-8, 91288, 22602),
                "student_kd": _model(0.975, 5e-8, 91288, 22602),
                "student_kd_int8": _model(0.974, 4e-8, 27568, 22602),
            },
            "test_samples": 360,
        },
        "prepare": {"energy": _energy(5e-7), "classes": 10},
        "train": {"energy": _energy(TEACHER_J), "params": 155530},
        "distill": {
            "energy": _energy(8e-5),
            "student_kd": {"energy_j": KD_J, "params": 22602},
            "student_scratch": {"energy_j": SCRATCH_J, "params": 22602},
        },
        "optimize": {"energy": _energy(OPT_J), "size_ratio": 0.3},
        "clean": {"energy": _energy(2e-9), "removed_total": {"invalid": 0}},
    }


def _by_model(rows):
    return {r["model"]: r for r in rows}


# --- tables --------------------------------------------------------------------------------


def test_energy_to_obtain_adds_the_upstream_stages(metrics):
    teacher = energy_to_obtain("teacher", metrics)
    assert (teacher["own_j"], teacher["obtain_j"]) == (TEACHER_J, TEACHER_J)
    assert energy_to_obtain("student_scratch", metrics)["obtain_j"] == SCRATCH_J
    kd = energy_to_obtain("student_kd", metrics)
    assert kd["own_j"] == KD_J
    assert kd["obtain_j"] == pytest.approx(TEACHER_J + KD_J)
    int8 = energy_to_obtain("student_kd_int8", metrics)
    assert int8["own_j"] == OPT_J
    assert int8["obtain_j"] == pytest.approx(TEACHER_J + KD_J + OPT_J)


def test_every_model_is_charged_its_window_and_the_data_stages_apart(metrics):
    """One boundary: the teacher's window (not its whole stage) like the students'; active
    energy beside gross; the data stages a figure of their own."""
    metrics["train"]["teacher"] = {"energy_j": 3e-5, "active_energy_j": 1e-5}
    metrics["distill"]["student_kd"]["active_energy_j"] = 2e-5
    for stage in ("prepare", "clean"):
        metrics[stage]["energy"]["active_energy_j"] = 1e-9
    kd = energy_to_obtain("student_kd", metrics)
    assert kd["obtain_j"] == pytest.approx(3e-5 + KD_J)  # not the stage's TEACHER_J
    assert kd["obtain_active_j"] == pytest.approx(1e-5 + 2e-5)
    row = _by_model(model_rows(metrics, 0))["student_kd"]
    assert row["data_j"] == pytest.approx(5e-7 + 2e-9)
    assert row["data_active_j"] == pytest.approx(2e-9)
    assert row["obtain_active_j"] == pytest.approx(3e-5)


def test_energy_to_obtain_refuses_to_add_figures_of_two_modes(metrics):
    metrics["distill"]["energy"]["tracking_mode"] = "process"
    metrics["train"]["energy"]["tracking_mode"] = "machine"
    kd = energy_to_obtain("student_kd", metrics)
    assert kd["obtain_j"] is None and kd["mixed_modes"] == "machine,process"
    assert energy_to_obtain("student_scratch", metrics)["obtain_j"] == SCRATCH_J
    row = _by_model(model_rows(metrics, 0))["student_kd"]
    shown = dict(col.MODEL_COLS and [(k, f) for k, _, f in col.MODEL_COLS])["obtain"](row)
    assert shown == "refused: mixes machine,process modes"


def test_model_rows_one_per_evaluated_model(metrics):
    rows = model_rows(metrics, total_inferences=1_000_000)
    assert [r["model"] for r in rows] == [
        "teacher",
        "student_scratch",
        "student_kd",
        "student_kd_int8",
    ]
    by = _by_model(rows)
    kd = by["student_kd"]
    assert kd["obtain_j"] == pytest.approx(TEACHER_J + KD_J)
    assert kd["train_j"] == KD_J
    assert kd["total_j"] == pytest.approx(TEACHER_J + KD_J + 5e-8 * 1000)
    assert by["student_kd_int8"]["obtain_j"] == pytest.approx(TEACHER_J + KD_J + OPT_J)
    assert by["teacher"]["size_kb"] == pytest.approx(623016 / 1024)
    assert by["teacher"]["accuracy"] == 0.9889 and by["teacher"]["backend"] == "torch"
    assert by["student_scratch"]["total_j"] == pytest.approx(SCRATCH_J + 5e-8 * 1000)


def test_total_kwh_scales_with_the_inferences(metrics):
    zero = _by_model(model_rows(metrics, 0))["teacher"]
    assert zero["total_j"] == pytest.approx(TEACHER_J)


def test_missing_optimize_energy_leaves_int8_unknown(metrics):
    del metrics["optimize"]
    by = _by_model(model_rows(metrics, 1000))
    assert by["student_kd_int8"]["obtain_j"] is None
    assert by["student_kd_int8"]["train_j"] is None
    assert by["student_kd_int8"]["total_j"] is None
    assert by["student_kd"]["obtain_j"] == pytest.approx(TEACHER_J + KD_J)


def test_missing_teacher_energy_leaves_distilled_models_unknown(metrics):
    del metrics["train"]["energy"]
    by = _by_model(model_rows(metrics, 1000))
    assert by["teacher"]["obtain_j"] is None
    assert by["student_kd"]["obtain_j"] is None
    assert by["student_kd_int8"]["obtain_j"] is None
    assert by["student_scratch"]["obtain_j"] == SCRATCH_J


def test_missing_inference_energy_leaves_total_unknown(metrics):
    metrics["evaluate"]["models"]["teacher"]["energy_per_1k_j"] = None
    teacher = _by_model(model_rows(metrics, 1000))["teacher"]
    assert teacher["obtain_j"] == TEACHER_J and teacher["total_j"] is None


def test_unknown_model_has_no_obtain_energy(metrics):
    metrics["evaluate"]["models"]["mystery"] = _model(0.5, 1e-8, 100, 10)
    row = _by_model(model_rows(metrics, 1000))["mystery"]
    assert row["train_j"] is None and row["obtain_j"] is None and row["total_j"] is None


def test_no_evaluate_metrics_no_model_rows(metrics):
    del metrics["evaluate"]
    assert model_rows(metrics, 1000) == []


def test_missing_size_is_unknown_not_zero(metrics):
    del metrics["evaluate"]["models"]["teacher"]["size_bytes"]
    assert _by_model(model_rows(metrics, 1000))["teacher"]["size_kb"] is None


def test_stage_rows_in_pipeline_order_with_variants(metrics):
    metrics["train@tf"] = {"energy": _energy(7e-5)}
    metrics["zzz_custom"] = {"energy": _energy(1e-9)}
    metrics["report"] = {"models": 4}  # no energy block: no row
    rows = stage_rows(metrics)
    assert [r["stage"] for r in rows] == [
        "prepare",
        "clean",
        "train",
        "train@tf",
        "distill",
        "optimize",
        "evaluate",
        "zzz_custom",
    ]
    train = rows[2]
    assert train["energy_j"] == TEACHER_J and train["cpu_j"] == TEACHER_J / 4
    assert train["duration_s"] == 2.0 and train["emissions_g"] == TEACHER_J * 0.05


def test_stage_rows_source_text_skips_absent(metrics):
    metrics["train"]["energy"]["source"] = {
        "cpu": "measured:intel_rapl",
        "gpu": "measured:nvml_energy_counter",
        "ram": "estimated:ram_size_model",
    }
    rows = {r["stage"]: r for r in stage_rows(metrics)}
    assert rows["prepare"]["source"] == "cpu=estimated:cpu_load, ram=estimated:ram_size_model"
    assert rows["train"]["source"] == (
        "cpu=measured:intel_rapl, gpu=measured:nvml_energy_counter, ram=estimated:ram_size_model"
    )


def test_stage_rows_unmeasured_stage_has_none_values(metrics):
    metrics["train"]["energy"] = {"measured": False, "source": ESTIMATED}
    train = {r["stage"]: r for r in stage_rows(metrics)}["train"]
    assert train["energy_j"] is None and train["duration_s"] is None


# --- render --------------------------------------------------------------------------------


@pytest.fixture
def tables(metrics):
    models = model_rows(metrics, 1_000_000)
    models[0] = {**models[0], "latency_p95_ms": None}
    return models, stage_rows(metrics)


def _two_tables(models, stages) -> list[Table]:
    return [
        Table("Models (test split)", models, col.MODEL_COLS),
        Table("Energy per stage", stages, col.STAGE_COLS, intro="per stage", notes=["n1"]),
    ]


def test_markdown_has_both_tables_and_the_image(tables):
    models, stages = tables
    md = markdown(
        "My <report>", _two_tables(models, stages), ["note one", "note two"], [("acc", "a.png")]
    )
    lines = md.splitlines()
    assert lines[0] == "# My <report>"
    assert "## Models (test split)" in lines and "## Energy per stage" in lines
    assert "per stage" in lines and "- n1" in lines
    model_head = next(i for i, s in enumerate(lines) if s.startswith("| model | backend |"))
    stage_head = next(i for i, s in enumerate(lines) if s.startswith("| stage | energy (J) |"))
    assert lines[model_head + 1].startswith("|---|")
    body = [s for s in lines[model_head + 2 :] if s.startswith("| ")][: len(models)]
    assert [s.split(" | ")[0] for s in body] == [f"| {m['model']}" for m in models]
    assert len([s for s in lines[stage_head + 2 :] if s.startswith("| ")]) == len(stages)
    assert "![acc](a.png)" in md
    assert "- note one" in lines and "- note two" in lines


def test_markdown_formats_numbers_and_missing_values(tables):
    models, stages = tables
    md = markdown("t", _two_tables(models, stages), [], [])
    teacher = next(s for s in md.splitlines() if s.startswith("| teacher |"))
    cells = dict(
        zip(
            [c[1] for c in col.MODEL_COLS],
            [c.strip() for c in teacher.strip("|").split("|")],
            strict=True,
        )
    )
    assert cells["model"] == "teacher" and cells["backend"] == "torch"
    assert cells["accuracy"] == "0.9889" and cells["macro-F1"] == "0.9879"
    assert cells["params"] == "155,530"
    assert cells["size (KiB)"] == "608.4"  # 623016 B in KiB
    assert cells["p95 (ms)"] == "n/a"  # the p95 set to None above
    assert cells["J to obtain (gross / active)"] == "4.000e-05 / n/a"
    assert cells["accuracy CI"] == "[0.980, 0.995]"
    assert cells["J / 1k inferences"] == "2.000e-07 ± 1.000e-08"


def test_html_page_embeds_both_tables_and_the_png(tables):
    models, stages = tables
    png = b"\x89PNG\r\n\x1a\nfake"
    page = html_page("A <b> & c", _two_tables(models, stages), ["x < y"], [("acc", png)])
    assert page.count("<table>") == 2 and page.count("</table>") == 2
    m = re.search(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", page)
    assert m and base64.b64decode(m.group(1)) == png
    assert "<title>A &lt;b&gt; &amp; c</title>" in page and "<b>" not in page
    assert "<li>x &lt; y</li>" in page and "<li>n1</li>" in page
    assert page.count("<tr>") == 2 + len(models) + len(stages)


# --- plot ----------------------------------------------------------------------------------


def test_accuracy_energy_png_is_a_png(tables):
    import matplotlib.image as mpimg

    models, _ = tables
    png = accuracy_energy_png(models)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    img = mpimg.imread(io.BytesIO(png), format="png")
    assert img.shape[:2] == (462, 1210)  # figsize (11, 4.2) at 110 dpi


def test_accuracy_energy_png_skips_rows_without_values(tables):
    models, _ = tables
    partial = copy.deepcopy(models)
    for r in partial:
        r["obtain_j"] = None
    partial.append({"model": "broken", "accuracy": None, "energy_per_1k_j": 1e-8})
    assert accuracy_energy_png(partial).startswith(b"\x89PNG")
    assert accuracy_energy_png([]).startswith(b"\x89PNG")
