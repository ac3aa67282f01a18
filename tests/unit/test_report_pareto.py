"""The cross-run report: points from MLflow parent runs, the front, seeds, HTML/PNG output,
MLflow tags and the `greenpipe report` command."""

from __future__ import annotations

import base64
import csv
import re
import shutil
from pathlib import Path
from types import SimpleNamespace

import matplotlib.pyplot as plt
import pytest
from pictures import blobs, pixels, size

from greenpipe.report import crossrun
from greenpipe.report.mlflow_runs import fingerprint, run_points, tag_pareto, unflatten
from greenpipe.report.seeds import accuracy_by_seed, kd_against_scratch, seed_runs

REPO = Path(__file__).resolve().parents[2]
BACKENDS = ["torch", "tensorflow"]


def _flat(acc_kd: float, acc_scratch: float, backend: str = "torch") -> dict[str, float]:
    """A parent run's metrics as stage_run logs them: <stage>/<backend>/<path>."""
    ev = f"evaluate/{backend}/models"
    return {
        f"train/{backend}/energy/energy_j": 4e-5,
        f"distill/{backend}/student_kd/energy_j": 5e-5,
        f"distill/{backend}/student_scratch/energy_j": 2e-5,
        f"{ev}/teacher/accuracy": 0.99,
        f"{ev}/teacher/energy_per_1k_j": 2e-7,
        f"{ev}/student_kd/accuracy": acc_kd,
        f"{ev}/student_kd/energy_per_1k_j": 5e-8,
        f"{ev}/student_kd/params": 22602.0,
        f"{ev}/student_scratch/accuracy": acc_scratch,
        f"{ev}/student_scratch/energy_per_1k_j": 5e-8,
        "prepare/energy/energy_j": 1e-7,
    }


def _run(run_id: str, seed: int, metrics: dict, start: int, **params) -> SimpleNamespace:
    params = {"seed": str(seed), "distill.alpha": "0.7", "tracking.mlflow_uri": "x", **params}
    return SimpleNamespace(
        info=SimpleNamespace(run_id=run_id, run_name=f"run {run_id}", start_time=start),
        data=SimpleNamespace(metrics=metrics, params=params, tags={"dvc.exp_name": "e"}),
    )


def test_unflatten_rebuilds_the_stage_metrics_per_backend():
    flat = {**_flat(0.97, 0.96), "evaluate/models/teacher/accuracy": 0.5}  # a legacy key
    tree = unflatten(flat, BACKENDS, legacy_backend="torch-old")
    assert tree["torch"]["distill"]["student_kd"]["energy_j"] == 5e-5
    assert tree["torch"]["evaluate"]["models"]["student_kd"] == {
        "accuracy": 0.97,
        "energy_per_1k_j": 5e-8,
        "params": 22602.0,
        "backend": "torch",
    }
    assert tree["torch-old"]["evaluate"]["models"]["teacher"]["accuracy"] == 0.5
    # the data stages are shared: every framework's models are charged them
    assert tree["torch"]["prepare"]["energy"]["energy_j"] == 1e-7
    assert tree["torch-old"]["prepare"] == tree["torch"]["prepare"]


def test_fingerprint_ignores_seed_and_bookkeeping_only():
    a = {"seed": "1", "distill.alpha": "0.7", "tracking.mlflow_uri": "a", "report.title": "t"}
    assert fingerprint(a) == fingerprint({**a, "seed": "2", "tracking.mlflow_uri": "b"})
    assert fingerprint(a) != fingerprint({**a, "distill.alpha": "0.5"})


def test_run_points_one_per_model_with_the_run_label():
    points = run_points(_run("r1", 3, _flat(0.97, 0.96), 10), BACKENDS, 1000)
    by = {p["model"]: p for p in points}
    assert set(by) == {"teacher", "student_kd", "student_scratch"}
    kd = by["student_kd"]
    assert kd["seed"] == 3 and kd["run_id"] == "r1" and kd["exp_name"] == "e"
    assert kd["params"] == 22602 and kd["run_params"] == {"distill.alpha": "0.7"}
    assert kd["obtain_j"] == pytest.approx(9e-5)  # the teacher's training is charged
    assert kd["total_j"] == pytest.approx(9e-5 + 5e-8)


@pytest.fixture
def points() -> list[dict]:
    runs = [
        _run("a", 1, _flat(0.97, 0.96), 1),
        _run("b", 2, _flat(0.98, 0.98), 2),
        _run("c", 3, _flat(0.96, 0.97), 3),
        _run("old", 1, _flat(0.10, 0.10), 0),  # the same seed earlier: superseded by "a"
        _run("other", 7, _flat(0.99, 0.99), 4, **{"distill.alpha": "0.1"}),  # other config
    ]
    return [p for r in runs for p in run_points(r, BACKENDS, 1000)]


def test_seeds_take_the_latest_run_per_seed_of_the_largest_config(points):
    config, seeds = seed_runs(points)
    assert seeds == {1: "a", 2: "b", 3: "c"}
    rows = {r["model"]: r for r in accuracy_by_seed(points, seeds)}
    kd = rows["student_kd"]
    assert (kd["seed_1"], kd["seed_2"], kd["seed_3"], kd["n"]) == (0.97, 0.98, 0.96, 3)
    assert kd["mean"] == pytest.approx(0.97) and kd["std"] == pytest.approx(0.01)
    (cmp,) = kd_against_scratch(list(rows.values()), seeds)
    assert cmp["difference"] == pytest.approx(0.97 - 0.97)
    assert cmp["kd_at_least_scratch"] == "2 of 3 seeds" and cmp["verdict"] == "KD >= scratch"


def test_no_config_with_two_seeds(points):
    one = [p for p in points if p["run_id"] == "other"]
    assert seed_runs(one) == (None, {})


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


def test_tag_pareto_tags_every_run_true_or_false():
    tags = {}
    client = SimpleNamespace(set_tag=lambda run, k, v: tags.__setitem__((run, k), v))
    pts = [
        {"run_id": "a", "model": "m", "backend": "torch"},
        {"run_id": "a", "model": "n", "backend": "tensorflow"},
        {"run_id": "b", "model": "m", "backend": "torch"},
    ]
    tag_pareto(client, pts, [False, True, False], "total")
    assert tags[("a", "greenpipe.pareto")] == "true" and tags[("b", "greenpipe.pareto")] == "false"
    assert tags[("a", "greenpipe.pareto.models")] == "n@tensorflow"
    assert tags[("b", "greenpipe.pareto.models")] == "-"
    assert tags[("b", "greenpipe.pareto.energy")] == "total"


def _mlflow_store(root: Path, runs: list[tuple[int, dict]]) -> str:
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(uri)
    exp = client.create_experiment("greenpipe-digits", artifact_location=(root / "a").as_uri())
    for seed, metrics in runs:
        run = client.create_run(exp, run_name=f"seed {seed}", tags={"greenpipe.role": "x"})
        client.log_param(run.info.run_id, "seed", str(seed))
        for k, v in metrics.items():
            client.log_metric(run.info.run_id, k, v)
        client.set_terminated(run.info.run_id, "FINISHED")
    return uri


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> tuple[Path, str]:
    """A repo folder with params.yaml and an MLflow store with two finished parent runs."""
    root = tmp_path_factory.mktemp("store")
    shutil.copy(REPO / "params.yaml", root / "params.yaml")
    return root, _mlflow_store(root, [(1, _flat(0.97, 0.96)), (2, _flat(0.98, 0.95, "tensorflow"))])


def test_greenpipe_report_command(store, monkeypatch, capsys):
    from mlflow.tracking import MlflowClient

    from greenpipe.cli import main

    root, uri = store
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    with pytest.raises(SystemExit) as done:
        main(["--root", str(root), "report", "--energy", "train", "--out", "out"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert "pareto: student_scratch@torch seed 1" in out
    page = (root / "out" / "index.html").read_text()
    assert "<table>" in page and "data:image/png;base64," in page
    png = (root / "out" / "pareto.png").read_bytes()
    assert size(png) == (605, 990)
    with (root / "out" / "points.csv").open() as f:
        front = sorted({r["model"] for r in csv.DictReader(f) if r["pareto"] == "True"})
    assert front, "no point on the front"
    for i, model in enumerate(front):  # its points (two runs may share a place) and its key
        assert len(blobs(png, plt.cm.tab10(i))) >= 2, model
    tags = [r.data.tags.get("greenpipe.pareto") for r in MlflowClient(uri).search_runs(["1"])]
    assert sorted(tags) == ["true", "true"]


def test_greenpipe_report_without_runs_is_a_one_line_error(store, monkeypatch, capsys):
    from greenpipe.cli import main

    root, uri = store
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    with pytest.raises(SystemExit) as done:
        main(["--root", str(root), "report", "--experiment", "nothing-here", "--no-tag"])
    assert done.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no finished run with evaluated models" in err[0]


def test_every_config_with_seeds_gets_its_tables_named_by_what_differs(points):
    from greenpipe.report.seeds import describe, seed_groups

    more = [
        _run("x", 8, _flat(0.9, 0.9), 9, **{"distill.alpha": "0.1"}),
        _run("y", 9, _flat(0.9, 0.9), 9, **{"distill.alpha": "0.1", "tracking.mlflow_uri": "z"}),
    ]
    pts = points + [p for r in more for p in run_points(r, BACKENDS, 1000)]
    groups = seed_groups(pts)
    # three seeds each: the more recent configuration comes first
    assert [sorted(seeds) for _, seeds in groups] == [[7, 8, 9], [1, 2, 3]]
    assert describe(groups[0][0], pts, [groups[1][0]]) == "distill.alpha=0.1"
    page = crossrun.build(crossrun.with_front(pts, "train"), "train", "t")["index.html"]
    assert page.count("<table>") == 6
    assert "Accuracy over seeds: configuration" in page and "(distill.alpha=0.7)" in page


def test_pareto_png_draws_every_point_once_coloured_on_the_front_grey_off_it():
    from greenpipe.report.plot import pareto_png

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
    from greenpipe.report.plot import seeds_png

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
