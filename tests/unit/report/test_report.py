"""greenpipe.report: table rows from stage metrics, Markdown/HTML pages and the PNG plot."""

from __future__ import annotations

import base64
import copy
import io
import re

import numpy as np
import pytest

from greenpipe.report import columns as col
from greenpipe.report.plot import accuracy_energy_png, energy_stages_png
from greenpipe.report.render import Image, Page, Table, html_page, markdown
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
    shown = {k: f for k, _, f in col.ENERGY_COLS}["obtain"](row)
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


PNG = b"\x89PNG\r\n\x1a\nfake"


def _page(models, stages, title="t", notes=()) -> Page:
    tables = [
        Table("Models: quality", models, col.QUALITY_COLS),
        Table("Models: speed and size", models, col.SPEED_COLS),
        Table("Models: energy", models, col.ENERGY_COLS),
        Table("Energy per stage", stages, col.STAGE_COLS, intro="per stage", notes=["n1"]),
    ]
    found = [("Best", "most accurate: teacher"), ("Energy", "RAM < 90%"), ("Best", "second")]
    return Page(title, tables, list(notes), [Image("acc", PNG, "a.png")], found)


def _cells(md: str, cols, first: str) -> dict[str, str]:
    """The cells of the first Markdown row starting with `first` in the table of `cols`."""
    lines = md.splitlines()
    head = lines.index("| " + " | ".join(c[1] for c in cols) + " |")
    row = next(s for s in lines[head:] if s.startswith(f"| {first} |"))
    return dict(
        zip([c[1] for c in cols], [c.strip() for c in row.strip("|").split("|")], strict=True)
    )


def test_markdown_has_the_findings_first_then_the_image_tables_and_notes(tables):
    models, stages = tables
    md = markdown(_page(models, stages, "My <report>", ["note one", "note two"]))
    lines = md.splitlines()
    assert lines[0] == "# My <report>"
    order = ["## Findings", "### Best", "### Energy", "![acc](a.png)", "## Models: quality"]
    order += ["## Models: speed and size", "## Models: energy", "## Energy per stage", "## Notes"]
    assert [lines.index(h) for h in order] == sorted(lines.index(h) for h in order)
    best = lines.index("### Best")
    assert lines[best + 2 : best + 4] == ["- **most accurate:** teacher", "- second"]
    assert "- RAM < 90%" in lines  # Markdown is not HTML-escaped
    head = lines.index(
        "| model | backend | architecture | trained in | accuracy | accuracy CI | macro-F1 "
        "| F1 CI |"
    )
    assert lines[head + 1] == "|---|---|---|---|---|---|---|---|"
    body = lines[head + 2 : head + 2 + len(models)]
    assert [s.split(" | ")[0] for s in body] == [f"| {m['model']}" for m in models]
    stage_head = next(i for i, s in enumerate(lines) if s.startswith("| stage | energy |"))
    assert len([s for s in lines[stage_head + 2 :] if s.startswith("| ")]) == len(stages)
    assert "per stage" in lines and "- n1" in lines
    assert "- note one" in lines and "- note two" in lines


def test_markdown_formats_energies_with_si_prefixes_and_missing_values(tables):
    models, stages = tables
    md = markdown(_page(models, stages))
    quality = _cells(md, col.QUALITY_COLS, "teacher")
    assert quality["accuracy"] == "0.9889" and quality["macro-F1"] == "0.9879"
    assert quality["accuracy CI"] == "[0.980, 0.995]"
    speed = _cells(md, col.SPEED_COLS, "teacher")
    assert speed["params"] == "155,530" and speed["size (KiB)"] == "608.4"  # 623016 B
    assert speed["p95 (ms)"] == "n/a"  # the p95 set to None above
    energy = _cells(md, col.ENERGY_COLS, "teacher")
    assert energy["to obtain (gross / active)"] == "40.0 µJ / n/a"
    assert energy["per 1k inferences"] == "200 ± 10.0 nJ"
    stage = _cells(md, col.STAGE_COLS, "train")
    assert stage["energy"] == "40.0 µJ" and stage["RAM"] == "30.0 µJ"
    assert stage["emissions"] == "2.00 µgCO2e" and stage["GPU"] == "0 J"
    assert not re.search(r"\d\.\d+e[-+]\d", md), "a figure in 1e-08 notation"


def test_markdown_cells_escape_the_pipe():
    page = Page("t", [Table("x", [{"a": "p|q"}], [("a", "a", "{}")])], [])
    assert "| p\\|q |" in markdown(page)


def test_html_page_embeds_the_png_escapes_text_and_marks_findings(tables):
    models, stages = tables
    page = html_page(_page(models, stages, "A <b> & c", ["x < y"]))
    assert page.count("<table>") == 4 and page.count("</table>") == 4
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert [base64.b64decode(i) for i in images] == [PNG]
    assert "<title>A &lt;b&gt; &amp; c</title>" in page and "<b>" not in page
    assert "<li>x &lt; y</li>" in page and "<li>n1</li>" in page
    assert page.count("<tr>") == 4 + 3 * len(models) + len(stages)
    findings = page[page.index('<section id="findings">') : page.index("</section>")]
    assert findings.count('<li class="finding">') == 3 and "RAM &lt; 90%" in findings
    assert '<li class="finding"><strong>most accurate:</strong> teacher</li>' in findings
    assert page.index('id="findings"') < page.index("<table>")
    assert '<td class="text">teacher</td>' in page and '<td class="num">0.9889</td>' in page
    assert '<td class="num">200 ± 10.0\u00a0nJ</td>' in page  # a figure never wraps off its unit


def test_html_page_without_findings_has_no_findings_section():
    page = html_page(Page("t", [Table("x", [], [("a", "a", "{}")])], ["n"]))
    assert '<section id="findings">' not in page and "<table>" in page


def test_templates_ship_with_the_package():
    from importlib.resources import files

    names = {p.name for p in files("greenpipe.report").joinpath("templates").iterdir()}
    assert {"report.html", "report.md", "report.css"} <= names


# --- plot ----------------------------------------------------------------------------------


def _size(png: bytes) -> tuple[int, int]:
    import matplotlib.image as mpimg

    return mpimg.imread(io.BytesIO(png), format="png").shape[:2]


def _marks(png: bytes, colour) -> int:
    """How many marks (markers, bars, legend keys) of at least 12 px the picture has in
    exactly `colour` (a matplotlib colour; antialiased edges aside)."""
    from matplotlib.colors import to_rgb
    from PIL import Image
    from scipy import ndimage

    px = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    mask = np.abs(px - np.round(np.array(to_rgb(colour)) * 255)).max(axis=2) <= 2
    labels, n = ndimage.label(mask)
    return int((ndimage.sum(mask, labels, range(1, n + 1)) >= 12).sum())


def _bands(png: bytes, colour) -> int:
    """How many horizontal bands of the picture hold at least 12 px of `colour`: one per bar
    of a horizontal bar chart (grid lines may cut a bar, never its band) and legend row."""
    from matplotlib.colors import to_rgb
    from PIL import Image

    px = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    mask = np.abs(px - np.round(np.array(to_rgb(colour)) * 255)).max(axis=2) <= 2
    rows = (mask.sum(axis=1) >= 12).astype(int)
    return int((np.diff(np.concatenate([[0], rows])) == 1).sum())


def test_accuracy_energy_png_draws_every_model_in_both_panels(tables):
    from greenpipe.report.plot import _colours

    models, _ = tables
    png = accuracy_energy_png(models)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert _size(png) == (506, 1320)  # figsize (12, 4.6) at 110 dpi
    colours = _colours(models)
    assert len(colours) == len({r["model"] for r in models}) >= 2
    for model, colour in colours.items():
        points = sum(1 for r in models if r["model"] == model)
        assert _marks(png, colour) == 2 * points + 1, model  # each panel, and the legend


def test_accuracy_energy_png_skips_rows_without_values(tables):
    from greenpipe.report.plot import _colours

    models, _ = tables
    partial = copy.deepcopy(models)
    for r in partial:
        r["obtain_j"] = None
    partial.append({"model": "broken", "accuracy": None, "energy_per_1k_j": 1e-8})
    # a CI that misses its point (possible for a percentile bootstrap) is drawn as it is
    partial[0] |= {"accuracy_ci_low": partial[0]["accuracy"] + 0.001}
    png = accuracy_energy_png(partial)
    colours = _colours(partial)
    for model, colour in colours.items():
        points = sum(1 for r in partial if r["model"] == model and r["accuracy"] is not None)
        assert _marks(png, colour) == points + 1, model  # the inference panel only, the legend
    empty = accuracy_energy_png([])
    assert _size(empty) == (506, 1320)
    assert all(_marks(empty, c) == 0 for c in colours.values())


def test_energy_stages_png_has_one_bar_per_measured_stage(tables):
    from greenpipe.report.plot import COMPONENTS

    _, stages = tables
    small = _size(energy_stages_png(stages[:2]))
    png = energy_stages_png([*stages, {"stage": "x", "energy_j": None}])
    tall = _size(png)
    assert small[1] == tall[1] == 1210  # 11 in at 110 dpi
    assert tall[0] - small[0] == pytest.approx(0.42 * 110 * (len(stages) - 2), abs=2)
    seen = [  # parts of a visible size (the fixture's clean stage is a few nJ of ~100 uJ)
        {"stage": f"s{i}", "cpu_j": 3.0 + i, "gpu_j": 2.0 * (i % 2), "ram_j": 5.0} for i in range(5)
    ]
    seen = [s | {"energy_j": s["cpu_j"] + s["gpu_j"] + s["ram_j"]} for s in seen]
    bars = energy_stages_png(seen)
    for key, name, colour in COMPONENTS:  # a stacked segment per stage that has the part
        drawn = sum(1 for s in seen if s[key] > 0)
        assert _bands(bars, colour) == drawn + 1, name  # and the legend's key
    unknown = [{"stage": "s", "energy_j": 2.0, "cpu_j": None, "active_energy_j": None}]
    grey = energy_stages_png(unknown)
    assert _bands(grey, "0.75") == 1  # one bar, grey: its parts are unknown
    assert all(_bands(grey, c) == 1 for _, _, c in COMPONENTS)  # the legend only
    none = energy_stages_png([])
    assert _size(none)[1] == 1210 and _bands(none, "0.75") == 0


def test_plot_ticks_carry_si_prefixes():
    from greenpipe.report.plot import _tick

    assert [_tick(v) for v in (0, 50, 150, 1200, 0.025, 1e-9)] == [
        "0 J",
        "50 J",
        "150 J",
        "1.2 kJ",
        "25 mJ",
        "1 nJ",
    ]
