"""greenpipe.report.plot's cross-run pictures: the Pareto front and accuracy over seeds
(the run report's pictures: test_report.py; the compression plot: test_report_compression.py)."""

from __future__ import annotations

import matplotlib.pyplot as plt
from pictures import blobs, pixels, size

from greenpipe.report.plot import pareto_png, seeds_png


def test_pareto_png_draws_every_point_once_coloured_on_the_front_grey_off_it():
    def point(model, backend, energy_j, accuracy, pareto):
        keys = ("model", "backend", "energy_j", "accuracy", "pareto")
        return dict(zip(keys, (model, backend, energy_j, accuracy, pareto), strict=True))

    pts = [
        point("teacher", "torch", 1e-3, 0.99, True),
        point("student_kd", "torch", 1e-5, 0.95, True),
        point("student_kd", "tensorflow", 1e-4, 0.97, True),
        point("student_scratch", "torch", 3e-4, 0.90, False),
        # costly and less accurate: the corner where dominated points gather
        point("student_scratch", "tensorflow", 3e-3, 0.85, False),
        point("broken", "torch", None, 0.85, False),  # no energy: not drawn
    ]
    png = pareto_png(pts, "energy (J)")
    assert size(png) == (605, 990)
    for i, model in enumerate(["student_kd", "teacher"]):  # the front's models, sorted
        on = sum(1 for p in pts if p["model"] == model and p["pareto"])
        assert len(blobs(png, plt.cm.tab10(i))) == on + 1, model  # and its legend key
    assert len(blobs(png, plt.cm.tab10(2))) == 0  # no colour for a model off the front
    assert len(blobs(png, "0.75")) == 2 + 1  # the dominated points and their legend key
    assert len(blobs(png, "0.5")) == 2  # the legend's marker per backend
    empty = pareto_png([], "energy (J)")
    assert size(empty) == (605, 990) and len(blobs(empty, "0.75")) == 1  # the key only


def test_seeds_png_draws_one_line_per_model_with_a_marker_per_seed_per_backend():
    rows = [
        {"model": "teacher", "backend": "torch", "seed_1": 0.90, "seed_2": 0.95, "seed_3": 0.93},
        {"model": "student_kd", "backend": "torch", "seed_1": 0.80, "seed_2": 0.85},
        {"model": "teacher", "backend": "tensorflow", "seed_1": 0.91, "seed_3": 0.96},
    ]
    png = seeds_png(rows, [1, 2, 3])
    assert size(png) == (440, 1210)  # two panels of 5.5 in at 110 dpi
    tensorflow, torch = pixels(png)[:, :605], pixels(png)[:, 605:]  # panels sorted by name
    # each panel's lines take the colours in order; a marker per seed and one legend key
    assert [len(blobs(tensorflow, f"C{i}")) for i in range(3)] == [2 + 1, 0, 0]
    assert [len(blobs(torch, f"C{i}")) for i in range(3)] == [3 + 1, 2 + 1, 0]
