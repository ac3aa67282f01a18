"""greenpipe.report.crossrun: the front over every run's points, and the report's files
(HTML, Markdown, PNG, CSV)."""

from __future__ import annotations

import base64
import re

import pytest
from parent_runs import sample_points, two_more_seeds
from pictures import size

from greenpipe.report import crossrun


@pytest.fixture
def points() -> list[dict]:
    return sample_points()


def test_with_front_marks_the_non_dominated_points(points):
    marked = crossrun.with_front(points, "inference")
    front = {(p["run_id"], p["model"]) for p in marked if p["pareto"]}
    # cheapest inference (5e-8) and the most accurate at that cost: run "other"'s students
    assert front == {("other", "student_kd"), ("other", "student_scratch")}
    assert all(p["energy_j"] == p["energy_per_1k_j"] for p in marked)
    train = crossrun.with_front(points, "train")
    assert {(p["run_id"], p["model"]) for p in train if p["pareto"]} == {
        ("other", "student_scratch")
    }


def test_build_writes_html_with_tables_and_images_and_a_csv(points):
    files = crossrun.build(crossrun.with_front(points, "total"), "total", "All <runs>")
    assert set(files) == {"index.html", "report.md", "pareto.png", "seeds.png", "points.csv"}
    page = files["index.html"]
    assert page.count("<table>") == 4 and "<title>All &lt;runs&gt;</title>" in page
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert [base64.b64decode(i) for i in images] == [files["pareto.png"], files["seeds.png"]]
    assert size(files["pareto.png"]) == (605, 990)  # figsize (9, 5.5) at 110 dpi
    assert size(files["seeds.png"]) == (440, 605)  # one panel: the points are torch's only
    assert "| seed 1 | seed 2 | seed 3 |" in files["report.md"]
    assert "![Pareto front](pareto.png)" in files["report.md"]
    assert files["points.csv"].splitlines()[0].startswith("energy_j,run_name,")
    assert len(files["points.csv"].splitlines()) == 1 + len(points)


def test_every_config_with_seeds_gets_its_tables_named_by_what_differs(points):
    pts = points + two_more_seeds()
    page = crossrun.build(crossrun.with_front(pts, "train"), "train", "t")["index.html"]
    assert page.count("<table>") == 6
    assert "Accuracy over seeds: configuration" in page and "(distill.alpha=0.7)" in page
