"""A 4-variant sweep on tiny data, concurrently on Dask: every variant is a DVC experiment and
an MLflow parent run tagged with the sweep id, with one child run per stage; a failing variant
does not stop the others and is listed with its reason."""

from __future__ import annotations

import json

import pytest

# one worker runs the modules that share the session workspace (pytest -n ... --dist loadgroup)
pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("shared-workspace")]

# only the evaluate stage and the report differ between variants: the sweep machinery is
# what is tested here, on the cheapest stages (the shipped plans in plans/ vary the rest)
PLAN = """\
name: tiny
grid:
  evaluate.bootstrap_samples: [130, 160]
  evaluate.confidence: [0.9, 0.95]
"""

# the first variant is the workspace's own setting (all restored), the second fails in distill
FAILING = """\
name: half
grid:
  distill.min_param_ratio: [5.0, 1000.0]
"""


def _exp_names(ws) -> set[str]:
    shown = json.loads(ws.run("dvc", "exp", "show", "--json").stdout)
    return {r.get("name") for rev in shown for e in rev.get("experiments") or [] for r in e["revs"]}


def _sweep_runs(ws, sweep_id: str):
    runs = ws.runs()
    parents = [r for r in runs if r.data.tags.get("greenpipe.sweep") == sweep_id]
    children = {
        p.info.run_id: [r for r in runs if r.data.tags.get("mlflow.parentRunId") == p.info.run_id]
        for p in parents
    }
    return parents, children


@pytest.fixture(scope="module")
def sweep_ws(workspace):
    raw = workspace.params()
    raw["train"]["backends"] = ["torch"]
    workspace.write_params(raw)
    (workspace.path / "plans" / "tiny.yaml").write_text(PLAN)
    (workspace.path / "plans" / "half.yaml").write_text(FAILING)
    workspace.run("dvc", "repro")  # the baseline the variants start from
    workspace.run("git", "add", "-A")
    workspace.run("git", "commit", "-qm", "sweep plans and baseline")
    return workspace


def test_four_variant_sweep_on_dask(sweep_ws):
    proc = sweep_ws.run("greenpipe", "sweep", "plans/tiny.yaml", "--workers", "2")
    assert "4/4 variants ok" in proc.stdout, proc.stdout + proc.stderr
    sweep_id = proc.stdout.split("sweep ", 1)[1].split(":", 1)[0]
    names = _exp_names(sweep_ws)
    assert len([n for n in names if n and n.startswith("tiny-")]) == 4
    parents, children = _sweep_runs(sweep_ws, sweep_id)
    assert len(parents) == 4
    stages = [
        "prepare",
        "clean",
        "augment",
        "compress",
        "train@torch",
        "distill@torch",
        "optimize@torch",
        "evaluate@torch",
        "report",
    ]
    for p in parents:
        assert p.info.status == "FINISHED"
        kids = children[p.info.run_id]
        assert sorted(r.info.run_name for r in kids) == sorted(stages)
        ran = [r for r in kids if r.data.tags.get("greenpipe.inherited") != "true"]
        assert {"evaluate@torch", "report"} <= {r.info.run_name for r in ran}
        assert all(r.data.metrics["energy_j"] > 0 for r in ran)
        # two variants at a time: CodeCarbon counts each stage's own processes only
        assert p.data.params["tracking.codecarbon_mode"] == "process"
        assert all(r.data.tags["energy.source.cpu"].endswith("/process") for r in ran)
        # the baseline was measured in machine mode: none of its figures is inherited into a
        # process-mode variant (the mode is a DVC param: those stages ran again, or came from
        # another variant's process-mode run), and nothing of two modes was added
        assert {r.data.tags["energy.tracking_mode"] for r in kids} == {"process"}
        assert p.data.tags["greenpipe.totals_refused"] == "-"
        spent = sum(r.data.metrics["energy_j"] for r in ran)
        assert p.data.metrics["spent/energy_j"] == pytest.approx(spent, rel=1e-9)
        # stages that ran no code still put their recorded figures on the parent
        assert p.data.metrics["compress/ratio"] > 1
        assert p.data.metrics["train/torch/energy/energy_j"] > 0
    samples = sorted(int(p.data.params["evaluate.bootstrap_samples"]) for p in parents)
    assert samples == [130, 130, 160, 160]
    page = (sweep_ws.path / "reports" / "sweeps" / sweep_id / "index.html").read_text()
    assert "<table" in page and "data:image/png;base64," in page
    assert any(
        p.data.tags.get("greenpipe.pareto") == "true" for p in _sweep_runs(sweep_ws, sweep_id)[0]
    )


def test_failed_variant_does_not_stop_the_others(sweep_ws):
    proc = sweep_ws.run(
        "greenpipe",
        "sweep",
        "plans/half.yaml",
        "--workers",
        "2",
        "--runner",
        "threads",
        check=False,
    )
    assert proc.returncode == 1
    assert "1/2 variants ok" in proc.stdout
    failed = [ln for ln in proc.stdout.splitlines() if "FAILED" in ln]
    assert len(failed) == 1 and "min_param_ratio" in failed[0]
    assert "Traceback" not in proc.stdout + proc.stderr  # the stage's one line, no more
    assert any(
        ln.startswith("greenpipe error: 1 of 2 variant(s)") for ln in proc.stderr.splitlines()
    )
    sweep_id = proc.stdout.split("sweep ", 1)[1].split(":", 1)[0]
    parents, _ = _sweep_runs(sweep_ws, sweep_id)
    assert sorted(p.info.status for p in parents) == ["FAILED", "FINISHED"]


def test_bad_plan_fails_before_any_variant_runs(sweep_ws):
    (sweep_ws.path / "bad.yaml").write_text("grid:\n  distill.alpha: [0.5, 2.0]\n")
    before = len(sweep_ws.runs())
    proc = sweep_ws.run("greenpipe", "sweep", "bad.yaml", check=False)
    assert proc.returncode == 2 and "distill.alpha" in proc.stderr.strip().splitlines()[-1]
    assert len(sweep_ws.runs()) == before
