"""The compression table of the cross-run report: each compressed run against the
uncompressed run of the same configuration and seed, with the >= 4x / <= 0.5 pt verdict."""

from __future__ import annotations

from types import SimpleNamespace

from pictures import blobs, size

from greenpipe.report import crossrun
from greenpipe.report.compression import compression_rows, is_uncompressed, setting
from greenpipe.report.mlflow_runs import run_points

UNCOMPRESSED = {"compress.dtype": "float32", "compress.codec": "none", "compress.level": "6"}
UINT8_ZSTD = {"compress.dtype": "uint8", "compress.codec": "zstd", "compress.level": "19"}


def _run(rid: str, acc: float, ratio: float, seed: int = 0, start: int = 0, **params):
    base = {"compress.downscale": "1", "compress.fraction": "1.0", "train.lr": "0.001"}
    metrics = {
        "compress/ratio": ratio,
        "compress/samples_kept/train": 1000.0,
        "compress/energy/energy_j": 1e-7,
        "train/torch/energy/energy_j": 4e-5,
        "evaluate/torch/models/teacher/accuracy": acc,
    }
    return SimpleNamespace(
        info=SimpleNamespace(run_id=rid, run_name=rid, start_time=start),
        data=SimpleNamespace(
            metrics=metrics, params={"seed": str(seed), **base, **params}, tags={}
        ),
    )


def _points(*runs):
    return [p for r in runs for p in run_points(r, ["torch"], 1000)]


def test_settings_are_named_and_the_baseline_is_recognised():
    assert is_uncompressed({**UNCOMPRESSED, "compress.downscale": "1", "compress.fraction": "1"})
    assert not is_uncompressed({**UNCOMPRESSED, "compress.fraction": "0.5"})
    label = setting(
        {
            **UINT8_ZSTD,
            "compress.downscale": "2",
            "compress.fraction": "0.5",
            "compress.subsample": "kcenter",
        }
    )
    assert label == "uint8 zstd-19, 1/2 res, 50% kcenter"


def test_each_compressed_run_is_judged_against_its_own_baseline():
    points = _points(
        _run("base", 0.9800, 1.0, **UNCOMPRESSED),
        _run("small-loss", 0.9770, 6.5, **UINT8_ZSTD),  # -0.30 pt at 6.5x: meets
        _run("big-loss", 0.9700, 9.0, **{**UINT8_ZSTD, "compress.level": "3"}),  # -1.0 pt
        _run("low-ratio", 0.9800, 3.0, **{**UINT8_ZSTD, "compress.level": "1"}),
        _run("other-config", 0.95, 6.0, **UINT8_ZSTD, **{"train.lr": "0.01"}),
        _run("other-seed", 0.95, 6.0, seed=1, **UINT8_ZSTD),
    )
    rows = {r["run_name"]: r for r in compression_rows(points)}
    assert rows["base"]["verdict"] == "baseline"
    assert round(rows["small-loss"]["accuracy_change_pts"], 2) == -0.30
    assert rows["small-loss"]["verdict"].startswith("meets")
    assert rows["big-loss"]["verdict"].startswith("misses")
    assert rows["low-ratio"]["verdict"].startswith("misses")
    for lonely in ("other-config", "other-seed"):
        assert rows[lonely]["accuracy_change_pts"] is None
        assert "no uncompressed run" in rows[lonely]["verdict"]
    assert rows["small-loss"]["train_j"] == 4e-5


def test_report_shows_the_compression_table_and_plot():
    points = crossrun.with_front(
        _points(_run("base", 0.98, 1.0, **UNCOMPRESSED), _run("z", 0.977, 6.5, **UINT8_ZSTD)),
        "train",
    )
    files = crossrun.build(points, "train", "t")
    png = files["compression.png"]
    assert size(png) == (550, 990)  # figsize (9, 5) at 110 dpi
    # one marker per run, in the colour cycle's order, drawn at 70% opacity
    assert [len(blobs(png, f"C{i}", alpha=0.7, bridge=5)) for i in range(3)] == [1, 1, 0]
    md = files["report.md"]
    assert "Dataset compression: downstream accuracy and training energy" in md
    assert "| uint8 zstd-19 | 6.50x |" in md and "+0.00" not in md.split("uint8 zstd-19")[1][:80]
    assert "-0.30" in md


def test_compression_png_draws_each_run_once_sized_by_its_training_energy():
    from greenpipe.report.plot import compression_png

    rows = [
        # the uncompressed baseline at the left, here the least accurate: the lower left corner
        ("none", 1.0, 0.95, 1.0, "torch"),
        ("zstd", 6.5, 0.97, 0.1, "torch"),
        ("zlib", 3.0, 0.98, 0.5, "tensorflow"),
        ("x", None, 0.9, 0.5, "torch"),
    ]
    keys = ("setting", "ratio", "accuracy", "train_j", "backend")
    rows = [dict(zip(keys, r, strict=True)) for r in rows]
    png = compression_png(rows)
    assert size(png) == (550, 990)
    marks = [blobs(png, f"C{i}", alpha=0.7, bridge=5) for i in range(4)]
    assert [len(m) for m in marks] == [1, 1, 1, 0]  # the run without a ratio is not drawn
    # the marker's area grows with the teacher's training energy: 1.0 J > 0.5 J > 0.1 J
    none, zstd, zlib = (m[0] for m in marks[:3])
    assert none > zlib > zstd
    assert len(blobs(png, "0.5")) == 2  # the legend's marker per backend
