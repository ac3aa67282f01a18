"""End to end on real DVC, MLflow (SQLite), Prefect (ephemeral API) and CodeCarbon (offline).

The tests share one workspace (session-wide: test_serve and test_sweep go on from here) and
run in order: dvc repro, a no-op repro, the Prefect flow, a DVC experiment, verification,
then bad input that must stop before any stage runs.
"""

from __future__ import annotations

import json

import pytest
import yaml

# one worker runs the modules that share the session workspace (pytest -n ... --dist loadgroup)
pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("shared-workspace")]

DATA_STAGES = ["prepare", "clean", "augment", "compress"]
# README's and `make compare`'s comparison of experiments (DVC's dependency hashes dropped)
COMPARE = ("dvc", "exp", "show", "--only-changed", "--drop", "models/|metrics/")
MODEL_STAGES = ["train", "distill", "optimize", "evaluate"]
MODELS = {
    "teacher",
    "student_scratch",
    "student_kd",
    "student_kd_int8",
    "student_kd_pruned",
    "student_kd_pruned_int8",
}


def stages_of(backends: list[str]) -> list[str]:
    """Every stage DVC expands, in order (foreach stages once per framework)."""
    model = [f"{s}@{b}" for s in MODEL_STAGES for b in backends]
    return [*DATA_STAGES, *model, "report"]


def _metrics_path(stage: str) -> str:
    name, _, backend = stage.partition("@")
    return f"metrics/models/{backend}/{name}.json" if backend else f"metrics/{name}.json"


def _parents(runs, driver: str | None = None):
    out = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    return [r for r in out if driver is None or r.data.tags.get("greenpipe.driver") == driver]


def _children(runs, parent_id: str):
    return [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent_id]


def _assert_ledger(parent, children):
    """The parent's spent total is the sum of its children's energy; inherited ones spent
    nothing and carry the recorded figures under inherited_*."""
    spent = [c for c in children if c.data.tags.get("greenpipe.inherited") != "true"]
    total = sum(c.data.metrics["energy_j"] for c in spent)
    assert parent.data.metrics["spent/energy_j"] == pytest.approx(total, rel=1e-9)
    assert parent.data.metrics["spent/stages"] == len(spent)
    for part in ("cpu", "ram"):
        key = f"{part}_energy_j"
        want = sum(c.data.metrics[key] for c in spent)
        assert parent.data.metrics[f"spent/{key}"] == pytest.approx(want, rel=1e-9)
    for c in children:
        if c.data.tags.get("greenpipe.inherited") == "true":
            assert "energy_j" not in c.data.metrics
            assert c.data.metrics["inherited_energy_j"] > 0, c.info.run_name


def _assert_stage_runs(children, stages):
    assert sorted(r.info.run_name for r in children) == sorted(stages)
    for r in children:
        assert r.info.status == "FINISHED", r.info.run_name
        assert r.data.metrics["energy_j"] > 0, r.info.run_name
        for comp in ("cpu", "ram"):
            src = r.data.tags[f"energy.source.{comp}"]
            assert src.split(":")[0] in ("measured", "estimated"), src
        assert r.data.metrics["duration_s"] > 0


def test_dvc_repro_runs_every_stage_under_one_parent(workspace):
    backends = workspace.params()["train"]["backends"]
    stages = stages_of(backends)
    known = {r.info.run_id for r in workspace.runs()}
    workspace.run("dvc", "repro")
    lock = yaml.safe_load((workspace.path / "dvc.lock").read_text())
    assert sorted(lock["stages"]) == sorted(stages)
    runs = [r for r in workspace.runs() if r.info.run_id not in known]
    parents = _parents(runs, "dvc")
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    for stage in stages:
        e = json.loads((workspace.path / _metrics_path(stage)).read_text())["energy"]
        # the whole span: its task windows plus the time outside them, gross and active
        parts = [*e["tasks"].values(), e["outside_tasks"]]
        assert sum(p["duration_s"] for p in parts) == pytest.approx(e["duration_s"], rel=1e-6)
        assert sum(p["energy_j"] for p in parts) == pytest.approx(e["energy_j"], rel=1e-6)
        assert e["ram_j"] / e["idle"]["ram_power_w"] == pytest.approx(
            e["duration_s"], rel=0.02, abs=0.01
        ), stage  # RAM is modelled at a constant power: its energy is a clock of the span
        assert 0 <= e["active_energy_j"] < e["energy_j"], stage
        assert e["tracking_mode"] == "machine" and e["idle"]["window_s"] > 0
        assert e["record"]["parent_run_id"] == parents[0].info.run_id
    _assert_stage_runs(_children(runs, parents[0].info.run_id), stages)
    _assert_ledger(parents[0], _children(runs, parents[0].info.run_id))
    assert parents[0].data.tags["greenpipe.inherited_stages"] == "-"
    for backend in backends:
        ev = json.loads((workspace.path / _metrics_path(f"evaluate@{backend}")).read_text())
        ev = ev["models"]
        assert set(ev) == MODELS
        for name, m in ev.items():
            assert 0.5 < m["accuracy"] <= 1.0, (backend, name)
            assert m["latency_p50_ms"] <= m["latency_p95_ms"]
            assert m["energy_per_1k_j"] > 0
            assert m["backend"] == backend
        assert ev["student_kd_int8"]["size_bytes"] < ev["student_kd"]["size_bytes"]
        key = f"evaluate/{backend}/models/teacher/accuracy"
        assert parents[0].data.metrics[key] == pytest.approx(ev["teacher"]["accuracy"])
        train = next(r for r in runs if r.info.run_name == f"train@{backend}")
        assert train.data.params["train.epochs"] == "4"
        assert "dvc.deps/data/dataset.npz" in train.data.tags
        assert f"dvc.outs/models/{backend}/teacher.model" in train.data.tags

    html = (workspace.path / "reports/report.html").read_text()
    assert html.count("<table") >= 2 and "data:image/png;base64," in html
    report_md = (workspace.path / "reports/report.md").read_text()
    assert 'id="findings"' in html and "## Findings" in report_md
    for backend in backends:
        rows = [ln for ln in report_md.splitlines() if ln.startswith(f"| teacher | {backend} |")]
        energy = next(ln for ln in rows if "J / " in ln)  # the models' energy table
        assert "n/a" not in energy  # gross and active: per 1k, own window, to obtain, total
    assert "Active = gross - idle power x duration" in report_md
    for backend in backends:
        assert f"| student_kd_int8 | {backend} |" in report_md
    assert (workspace.path / "reports/accuracy_energy.png").read_bytes()[:4] == b"\x89PNG"


def _significant(text: str) -> int:
    """Significant digits of a number as printed ("0.0466" -> 3, "2993.9" -> 5)."""
    return len(text.lstrip("-").replace(".", "").lstrip("0"))


def test_dvc_metrics_show_reads_the_headline_at_default_precision(workspace):
    """The headline is the one DVC metrics file, and at DVC's default precision every
    energy and emissions figure in it keeps at least 3 significant digits (J and gCO2e; in
    kWh and kg a stage's figure printed as 2e-05 or 0.0)."""
    proc = workspace.run("dvc", "metrics", "show")
    head, *rows = [ln.split() for ln in proc.stdout.splitlines() if ln.strip()]
    assert [r[0] for r in rows] == ["reports/headline.json"], proc.stdout
    shown = dict(zip(head[1:], rows[0][1:], strict=True))
    backends = workspace.params()["train"]["backends"]
    for b in backends:
        for model in ("teacher", "kd", "scratch"):
            assert 0.5 < float(shown[f"{b}.{model}.acc"]) <= 1
    energy = {k: v for k, v in shown.items() if k.endswith(("_j", "_g"))}
    assert len(energy) == 2 * len(backends) + 3, sorted(shown)
    for key, text in energy.items():
        assert _significant(text) >= 3, (key, text)
    # every stage's record stays readable on demand
    proc = workspace.run("dvc", "metrics", "show", "metrics/models/torch/evaluate.json")
    assert "models.teacher.energy_per_1k_j" in proc.stdout
    exp = workspace.mlflow().get_experiment_by_name(workspace.params()["experiment"])
    assert exp.tags["mlflow.experimentKind"] == "custom_model_development"


def test_second_repro_and_run_do_nothing(workspace):
    before = len(workspace.runs())
    proc = workspace.run("dvc", "repro")
    assert "Running stage" not in proc.stdout + proc.stderr
    proc = workspace.run("greenpipe", "run")
    assert "every stage is up to date in dvc.lock; nothing to run" in proc.stderr
    assert len(workspace.runs()) == before


def test_prefect_flow_runs_changed_stages_and_caches_the_rest(workspace):
    raw = workspace.params()
    raw["evaluate"]["bootstrap_samples"] += 10  # only the evaluate stages and the report change
    workspace.write_params(raw)
    stages = stages_of(raw["train"]["backends"])
    changed = [s for s in stages if s.startswith(("evaluate", "report"))]
    cached_stages = [s for s in stages if s not in changed]
    known = {r.info.run_id for r in workspace.runs()}
    proc = workspace.run("greenpipe", "run")
    assert f"ran {len(changed)} stage(s), {len(cached_stages)} up to date, 0 restored" in (
        proc.stderr
    )
    # the end of the run: each model's accuracy and energy, and where to look next
    table = proc.stdout.splitlines()
    assert table[0].split()[:2] == ["model", "accuracy"]
    for backend in raw["train"]["backends"]:
        line = next(ln for ln in table if ln.startswith(f"student_kd@{backend} "))
        assert " J" in line and "e-0" not in line
    assert "reports/report.html" in table[-2]
    assert "#/experiments/" in table[-1] and table[-1].endswith("?workflowType=machine_learning")
    parents = [r for r in _parents(workspace.runs(), "prefect") if r.info.run_id not in known]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    _assert_flow_run_mirrors_dvc(workspace, parents[0])
    stages_tag = parents[0].data.tags["greenpipe.stages"]
    assert "prepare=Cached" in stages_tag and "report=Completed" in stages_tag
    children = _children(workspace.runs(), parents[0].info.run_id)
    cached = [r for r in children if r.data.tags.get("greenpipe.inherited") == "true"]
    _assert_stage_runs([r for r in children if r not in cached], changed)
    _assert_ledger(parents[0], children)
    # up-to-date stages: an inherited child each, and their recorded figures on the parent
    assert sorted(r.info.run_name for r in cached) == sorted(cached_stages)
    assert {r.data.tags["greenpipe.how"] for r in cached} == {"up to date in dvc.lock"}
    inherited = parents[0].data.tags["greenpipe.inherited_stages"].split(",")
    assert sorted(inherited) == sorted(cached_stages)
    metrics = parents[0].data.metrics
    want = sum(r.data.metrics["inherited_energy_j"] for r in cached)
    assert metrics["inherited/energy_j"] == pytest.approx(want, rel=1e-9)
    assert metrics["compress/ratio"] > 1 and metrics["prepare/energy/energy_j"] > 0
    for backend in raw["train"]["backends"]:
        assert metrics[f"train/{backend}/energy/energy_j"] > 0
        assert metrics[f"train/{backend}/teacher/energy_j"] > 0  # its energy to obtain
        assert metrics[f"evaluate/{backend}/models/teacher/accuracy"] > 0.5
    lock = yaml.safe_load((workspace.path / "dvc.lock").read_text())
    for backend in raw["train"]["backends"]:
        locked = lock["stages"][f"evaluate@{backend}"]["params"]["params.yaml"]
        assert locked["evaluate"]["bootstrap_samples"] == raw["evaluate"]["bootstrap_samples"]


FLOW_RUN_PROBE = """
import asyncio, json
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
from prefect.client.schemas.sorting import FlowRunSort

async def main():
    async with get_client() as c:
        run = (await c.read_flow_runs(sort=FlowRunSort.START_TIME_DESC, limit=1))[0]
        tasks = await c.read_task_runs()
        tasks = [t for t in tasks if t.flow_run_id == run.id]
        names = {str(t.id): t.name for t in tasks}
        edges = {t.name: sorted(names[str(i.id)] for i in t.task_inputs.get("wait_for", []))
                 for t in tasks}
        arts = await c.read_artifacts(artifact_filter=ArtifactFilter(
            key=ArtifactFilterKey(any_=["greenpipe-energy"])))
        mine = [a.data for a in arts if a.flow_run_id == run.id]
        print(json.dumps({"edges": edges, "artifacts": mine}))

asyncio.run(main())
"""


def _assert_flow_run_mirrors_dvc(workspace, parent):
    """The latest flow run's task graph has dvc.yaml's edges (each stage task waits for the
    stages it depends on) and its artifact has the stage energy table and the MLflow run."""
    from greenpipe.graph import stage_graph

    proc = workspace.run("python", "-c", FLOW_RUN_PROBE)
    seen = json.loads(proc.stdout.strip().splitlines()[-1])
    assert seen["edges"] == stage_graph(workspace.path)
    assert len(seen["artifacts"]) == 1
    art = seen["artifacts"][0]
    assert f"runs/{parent.info.run_id}?workflowType=machine_learning)" in art
    assert "| train@torch | up to date |" in art and "| report | ran |" in art


def test_a_stage_restored_from_the_run_cache_is_recorded_as_restored(workspace):
    """Change train.epochs, run train@torch alone, change it back: DVC then restores the
    teacher from its run-cache without running any code. `greenpipe run` must say so, and
    record the stage as inherited with the figures of the run that produced the teacher."""
    raw = workspace.params()
    before = json.loads((workspace.path / _metrics_path("train@torch")).read_text())
    epochs = raw["train"]["epochs"]
    raw["train"]["epochs"] = epochs - 1
    workspace.write_params(raw)
    workspace.run("dvc", "repro", "--single-item", "train@torch")
    raw["train"]["epochs"] = epochs
    workspace.write_params(raw)
    known = {r.info.run_id for r in workspace.runs()}
    proc = workspace.run("greenpipe", "run")
    assert "ran 0 stage(s), 12 up to date, 1 restored from DVC's run-cache" in proc.stderr, (
        proc.stderr[-3000:]
    )
    assert "train@torch ran in" not in proc.stderr
    parent = next(r for r in _parents(workspace.runs(), "prefect") if r.info.run_id not in known)
    assert "train@torch=Restored" in parent.data.tags["greenpipe.stages"]
    children = _children(workspace.runs(), parent.info.run_id)
    train = next(c for c in children if c.info.run_name == "train@torch")
    assert train.data.tags["greenpipe.inherited"] == "true"
    assert train.data.tags["greenpipe.how"].startswith("restored by DVC from its run-cache")
    assert train.data.tags["greenpipe.inherited_from"] == before["energy"]["record"]["run_id"]
    recorded = before["energy"]["energy_j"]
    assert train.data.metrics["inherited_energy_j"] == pytest.approx(recorded)
    assert parent.data.metrics["train/torch/energy/energy_j"] == pytest.approx(recorded)
    assert parent.data.metrics["spent/energy_j"] == 0.0  # nothing ran: nothing spent
    assert parent.data.metrics["inherited/stages"] == len(children) == 13
    _assert_ledger(parent, children)


def test_dvc_exp_run_with_set_param_is_listed_with_metrics(workspace):
    workspace.run("git", "add", "-A")
    workspace.run("git", "commit", "-qm", "after flow")
    workspace.run("dvc", "exp", "run", "-n", "alpha-half", "-S", "distill.alpha=0.5")
    shown = json.loads(workspace.run("dvc", "exp", "show", "--json").stdout)
    names = json.dumps(shown)
    assert "alpha-half" in names
    assert "obtain_j" in names and "acc" in names
    # what the change did to accuracy and energy, at a glance: a 200-column terminal. DVC
    # also lists every changed file dependency as a hash column (the KD-derived models,
    # metrics/models): the README's command drops those, as `make compare` does
    wide = workspace.run("dvc", "exp", "show", "--only-changed").stdout
    table = workspace.run(*COMPARE).stdout.splitlines()
    header = next(ln for ln in table if "Experiment" in ln)
    width = max(len(ln.rstrip()) for ln in table)
    assert width <= 200, "\n".join(table)
    dropped = set(next(ln for ln in wide.splitlines() if "Experiment" in ln).split())
    dropped -= set(header.split())
    assert dropped and all(c.startswith(("models/", "metrics/")) for c in dropped), dropped
    for backend in workspace.params()["train"]["backends"]:
        assert f"{backend}.kd.acc" in header and f"{backend}.kd.obtain_j" in header, header
    assert "distill.alpha" in header and "total.energy_j" in header
    exp_parents = [
        r for r in _parents(workspace.runs()) if r.data.tags.get("dvc.exp_name") == "alpha-half"
    ]
    assert len(exp_parents) == 1
    # the teacher ran no code in this experiment: inherited, so its points keep their energy
    children = _children(workspace.runs(), exp_parents[0].info.run_id)
    _assert_ledger(exp_parents[0], children)
    by_name = {c.info.run_name: c for c in children}
    for backend in workspace.params()["train"]["backends"]:
        assert by_name[f"train@{backend}"].data.tags["greenpipe.inherited"] == "true"
        assert "greenpipe.inherited" not in by_name[f"evaluate@{backend}"].data.tags
        assert exp_parents[0].data.metrics[f"train/{backend}/teacher/energy_j"] > 0
        # the headline on the parent: the MLflow runs table compares experiments by it
        assert 0.5 < exp_parents[0].data.metrics[f"report/headline/{backend}/kd/acc"] <= 1
    assert exp_parents[0].data.metrics["report/headline/total/energy_j"] > 0
    assert exp_parents[0].data.metrics["inherited/energy_j"] > 0


def test_verify_reruns_and_finds_a_tampered_record(workspace):
    proc = workspace.run("greenpipe", "verify", "compress", "train@torch")
    assert "verified: outputs and result metrics are identical" in proc.stdout
    assert "metrics/models/torch/train.json:energy.energy_j" in proc.stdout  # spread shown
    lock_path = workspace.path / "dvc.lock"
    original = lock_path.read_text()
    lock = yaml.safe_load(original)
    out = next(o for o in lock["stages"]["compress"]["outs"] if o["path"] == "data/dataset.npz")
    out["md5"] = "0" * 32
    lock_path.write_text(yaml.safe_dump(lock, sort_keys=False))
    try:
        proc = workspace.run("greenpipe", "verify", "compress", check=False)
    finally:
        lock_path.write_text(original)
    assert proc.returncode == 1
    assert "data/dataset.npz differs" in proc.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize(
    "patch, needle",
    [
        ({"train": {"epochz": 3}}, "train.epochz"),
        ({"train": {"epochs": "ten"}}, "train.epochs"),
        ({"distill": {"alpha": 1.5}}, "distill.alpha"),
    ],
)
def test_bad_params_fail_before_any_stage_runs(workspace, patch, needle):
    good = workspace.params()
    raw = yaml.safe_load(yaml.safe_dump(good))
    for section, values in patch.items():
        raw[section].update(values)
    workspace.write_params(raw)
    lock_before = (workspace.path / "dvc.lock").read_text()
    runs_before = len(workspace.runs())
    try:
        proc = workspace.run("greenpipe", "run", check=False)
    finally:
        workspace.write_params(good)
    assert proc.returncode == 2
    err = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(err) == 1 and needle in err[0], proc.stderr
    assert (workspace.path / "dvc.lock").read_text() == lock_before
    assert len(workspace.runs()) == runs_before


def test_missing_data_path_is_one_line_runtime_error(workspace):
    proc = workspace.run("python", "pipelines/prepare.py", "--params", "missing.yaml", check=False)
    assert proc.returncode == 2 and "missing.yaml" in proc.stderr
    raw = workspace.params()
    raw["data"].update({"source": "npz", "path": "no/such/file.npz"})
    (workspace.path / "bad.yaml").write_text(yaml.safe_dump(raw))
    proc = workspace.run(
        "python",
        "pipelines/prepare.py",
        "--params",
        "bad.yaml",
        "--out",
        "data/bad.npz",
        "--metrics",
        "metrics/bad.json",
        check=False,
    )
    assert proc.returncode == 1
    assert "no/such/file.npz" in proc.stderr.strip().splitlines()[-1]
    assert not (workspace.path / "data/bad.npz").exists()
    assert not (workspace.path / "metrics/bad.json").exists()
    failed = [r for r in workspace.runs() if r.info.status == "FAILED"]
    assert failed and "no/such/file.npz" in failed[0].data.tags["greenpipe.error"]


def test_a_failing_stage_reaches_the_user_as_its_one_line_error(own_workspace):
    """A stage that fails under `greenpipe run`: its own one-line error, no traceback from
    Prefect or Python; a data.path that does not exist stops before the flow starts. (A
    workspace of its own: DVC removes the failing stage's outputs.)"""
    good = own_workspace.params()
    raw = yaml.safe_load(yaml.safe_dump(good))
    (own_workspace.path / "inputs" / "broken.npz").write_text("not an npz")
    try:
        raw["data"].update({"source": "npz", "path": "inputs/broken.npz"})
        own_workspace.write_params(raw)
        proc = own_workspace.run("greenpipe", "run", check=False)
        raw["data"]["path"] = "inputs/absent.npz"
        own_workspace.write_params(raw)
        early = own_workspace.run("greenpipe", "run", check=False)
    finally:
        own_workspace.write_params(good)
        (own_workspace.path / "inputs" / "broken.npz").unlink()
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1 and "Traceback" not in out, out
    last = proc.stderr.strip().splitlines()[-1]
    if "Stopping temporary server" in last:  # Prefect's own closing line
        last = proc.stderr.strip().splitlines()[-2]
    assert last.startswith("greenpipe error: stage 'prepare' failed (exit 1): data.path"), out
    assert early.returncode == 1
    lines = [ln for ln in early.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "data.path 'inputs/absent.npz' does not exist" in lines[0]
