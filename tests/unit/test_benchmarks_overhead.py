"""benchmarks/overhead.py's rounds run in ABBA order, so that the sums cancel a steady drift
of the machine's speed, and per-stage figures are means over the rounds; the workload
overrides (--plan, --set) name a bad item and its fix."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load(name: str):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    return module


def test_rounds_alternate_abba_so_a_linear_drift_cancels():
    overhead = _load("overhead")
    order = overhead.abba(2)
    assert order == ["greenpipe", "bare", "bare", "greenpipe"]
    assert overhead.abba(1) == ["greenpipe", "bare"]
    # a machine that slows by 10 s per run: the same work takes 100, 110, 120, 130 s
    walls = {"greenpipe": [], "bare": []}
    for i, arm in enumerate(order):
        walls[arm].append(100 + 10 * i)
    assert sum(walls["greenpipe"]) == sum(walls["bare"])  # ratio 1: the drift cancelled


def test_per_stage_figures_are_means_over_the_stages_every_round_timed():
    overhead = _load("overhead")
    assert overhead.mean_of([{"a": 1.0, "b": 4.0}, {"a": 3.0}]) == {"a": 2.0}


def test_rounds_below_one_and_bad_sets_name_the_fix():
    overhead = _load("overhead")
    with pytest.raises(SystemExit):
        overhead.parse(["--rounds", "0"])
    workspace = _load("workspace")
    assert workspace.plan_overrides(None, ["distill.epochs=3", "x.y=[a, b]"]) == {
        "distill.epochs": 3,
        "x.y": ["a", "b"],
    }
    with pytest.raises(SystemExit, match="not KEY=VALUE; write e.g. --set distill.epochs=3"):
        workspace.plan_overrides(None, ["distill.epochs"])
    assert workspace.plan_overrides(str(ROOT / "plans" / "realistic.yaml"))["distill.epochs"] == 20


def test_spread_is_the_slowest_over_the_fastest_run_of_one_arm():
    overhead = _load("overhead")
    assert overhead.spread([963.7, 879.6]) == pytest.approx(963.7 / 879.6 - 1)
    assert overhead.spread([100.0]) == 0.0


def test_host_steal_is_the_stolen_share_of_all_cpu_ticks_between_two_readings():
    overhead = _load("overhead")
    assert overhead.steal_share((10, 1000), (40, 2000)) == pytest.approx(0.03)
    assert overhead.steal_share((5, 100), (5, 100)) == 0.0  # no ticks: nothing taken
    steal, total = overhead.cpu_ticks()
    assert 0 <= steal <= total


def test_the_first_stage_began_its_duration_before_its_log_line(monkeypatch):
    """From the flow's log: when the first stage began, against the command's start."""
    import time

    overhead = _load("overhead")
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    try:
        started = 1796310000.25  # 2026-12-02 ... 15:40:00.25 UTC
        clock = time.strftime("%H:%M:%S", time.gmtime(started + 30))
        log = (
            "greenpipe: 9 stages: prepare -> report\n"
            f"{clock}.250 | INFO    | Task run 'prepare' - stage prepare ran in 8.0 s\n"
            "00:00:01.000 | INFO    | Task run 'report' - stage report ran in 1.0 s\n"
        )
        assert overhead.first_stage_after(log, started) == pytest.approx(22.0)
        late = started + 86400 - 5 - (started % 86400)  # 5 s before midnight
        assert overhead.first_stage_after(log.split("\n", 2)[2], late) == pytest.approx(5.0)
        assert overhead.first_stage_after("no stage ran", started) is None
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_benchmark_runs_share_one_prefect_home_created_before_any_timed_run(monkeypatch):
    workspace = _load("workspace")
    calls = []
    monkeypatch.setattr(workspace.subprocess, "run", lambda cmd, **kw: calls.append(kw["env"]))
    home = workspace.prefect_home()
    try:
        assert workspace.prefect_home() == home  # created once, then reused by every run
        assert [e["PREFECT_HOME"] for e in calls] == [str(home)]
        assert home.is_dir()
    finally:
        import shutil

        shutil.rmtree(home, ignore_errors=True)


def test_no_timed_run_includes_the_creation_of_the_shared_prefect_home(monkeypatch, tmp_path):
    import types

    overhead = _load("overhead")
    workspace, events = overhead.workspace, []

    def run(cmd, **kw):
        events.append("create the prefect home" if "-c" in cmd else "run")
        return types.SimpleNamespace(returncode=0, stdout="", stderr="")

    monkeypatch.setattr(workspace, "_prefect_home", None)
    monkeypatch.setattr(workspace.subprocess, "run", run)
    monkeypatch.setattr(overhead.time, "perf_counter", lambda: events.append("clock") or 0.0)
    overhead.timed(tmp_path, "greenpipe", "run")
    overhead.timed(tmp_path, "greenpipe", "run")
    assert events == ["create the prefect home", "clock", "run", "clock", "clock", "run", "clock"]


def test_stage_metrics_name_each_file_by_its_stage_and_backend(tmp_path):
    workspace, overhead = _load("workspace"), _load("overhead")
    (tmp_path / "metrics" / "models" / "torch").mkdir(parents=True)
    (tmp_path / "metrics" / "prepare.json").write_text('{"energy": {"duration_s": 2.5}}')
    # a stage whose tracker failed: its record holds no figure, and no stage gets None
    (tmp_path / "metrics" / "clean.json").write_text(
        '{"energy": {"duration_s": null}, "resources": {"peak_rss_mb": null}}'
    )
    (tmp_path / "metrics" / "models" / "torch" / "distill.json").write_text(
        '{"energy": {"duration_s": 40.0}, "resources": {"peak_rss_mb": 700, '
        '"preloaded_rss_mb": 300}}'
    )
    assert set(workspace.stage_metrics(tmp_path)) == {"prepare", "clean", "distill@torch"}
    assert overhead.spans(tmp_path) == {"prepare": 2.5, "distill@torch": 40.0}
    assert overhead.served(tmp_path) == {"distill@torch"}
    assert overhead.peak_memory(tmp_path) == {"distill@torch": 700}
