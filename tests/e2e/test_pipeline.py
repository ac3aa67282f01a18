"""End to end on real DVC, MLflow (SQLite), Prefect (ephemeral API) and CodeCarbon (offline).

The tests share one workspace (session-wide: test_serve and test_sweep go on from here) and
run in order: dvc repro, a no-op repro, the Prefect flow, a DVC experiment, verification,
then bad input that must stop before any stage runs.
"""

from __future__ import annotations

import base64
import csv
import importlib.util
import json
import re
from pathlib import Path

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
    "student_kd_onnx",
    "student_kd_onnx_int8",
    "student_kd_aoti",  # SMALL leaves aoti out of optimize.runtimes: a skipped row
}


def stages_of(backends: list[str]) -> list[str]:
    """Every stage DVC expands, in order (foreach stages once per framework)."""
    model = [f"{s}@{b}" for s in MODEL_STAGES for b in backends]
    return [*DATA_STAGES, *model, "report"]


# the models each model stage makes (a window of its span each), and what a model's energy
# to obtain adds up: its own window and those of the models it comes from
MADE_BY = {
    "train": ["teacher"],
    "distill": ["student_kd", "student_scratch"],
    "optimize": ["student_kd_int8", "student_kd_pruned", "student_kd_pruned_int8"],
}
CHAIN = {
    "teacher": ["teacher"],
    "student_scratch": ["student_scratch"],
    "student_kd": ["teacher", "student_kd"],
    "student_kd_int8": ["teacher", "student_kd", "student_kd_int8"],
    "student_kd_pruned": ["teacher", "student_kd", "student_kd_pruned"],
    "student_kd_pruned_int8": [
        "teacher",
        "student_kd",
        "student_kd_pruned",
        "student_kd_pruned_int8",
    ],
}
WINDOW_KEYS = (
    "energy_j",
    "cpu_j",
    "gpu_j",
    "ram_j",
    "active_energy_j",
    "emissions_g",
    "duration_s",
)
# a child run's metric -> the stage record's key (greenpipe.tracking.ledger.TOTAL_KEYS)
RUN_KEYS = {
    "energy_j": "energy_j",
    "cpu_energy_j": "cpu_j",
    "gpu_energy_j": "gpu_j",
    "ram_energy_j": "ram_j",
    "active_energy_j": "active_energy_j",
    "active_cpu_energy_j": "active_cpu_j",
    "active_gpu_energy_j": "active_gpu_j",
    "active_ram_energy_j": "active_ram_j",
    "emissions_g": "emissions_g",
    "duration_s": "duration_s",
}
PARTS = ("cpu", "gpu", "ram")
PICTURES = {"accuracy_energy.png": 1320, "energy_stages.png": 1210}  # width (px) at 110 dpi


def _metrics_path(stage: str) -> str:
    name, _, backend = stage.partition("@")
    return f"metrics/models/{backend}/{name}.json" if backend else f"metrics/{name}.json"


def _record(workspace, stage: str) -> dict:
    return json.loads((workspace.path / _metrics_path(stage)).read_text())


def _run_of(workspace, record: dict) -> str:
    """The MLflow run that logged a stage's run record (tag greenpipe.record_id)."""
    found = [
        r for r in workspace.runs() if r.data.tags.get("greenpipe.record_id") == record["record_id"]
    ]
    assert len(found) == 1, record
    return found[0].info.run_id


def _g_per_kwh(country: str) -> float:
    """The grid's carbon intensity CodeCarbon uses for `country`, from its own data."""
    spec = importlib.util.find_spec("codecarbon")
    base = Path(next(iter(spec.submodule_search_locations)))
    mix = json.loads((base / "data/private_infra/global_energy_mix.json").read_text())
    return mix[country]["carbon_intensity"]


def _assert_window(w: dict, idle: dict, g_per_kwh: float, label: str, endpoints: int = 2) -> None:
    """A stage's span, one of its windows or the rest outside them: no part negative, the
    parts add up, RAM energy is a clock of the duration (CodeCarbon models RAM at a constant
    power), active energy is gross minus idle power x duration per component (never below
    zero), and the emissions are the energy at the grid's carbon intensity. The clock is
    read at each of the window's `endpoints` samples, a few ms apart from their time stamps
    on a loaded machine: 5 ms of slack each."""
    assert w["duration_s"] >= 0 and min(w[f"{p}_j"] for p in PARTS) >= 0, (label, w)
    assert w["energy_j"] == pytest.approx(sum(w[f"{p}_j"] for p in PARTS), rel=1e-9), label
    clock = w["ram_j"] / idle["ram_power_w"]
    assert clock == pytest.approx(w["duration_s"], rel=0.02, abs=0.005 * endpoints), label
    active = {p: max(w[f"{p}_j"] - idle[f"{p}_power_w"] * w["duration_s"], 0.0) for p in PARTS}
    for p in PARTS:
        if f"active_{p}_j" in w:
            assert w[f"active_{p}_j"] == pytest.approx(active[p], rel=1e-9, abs=1e-12), label
    want = sum(active.values())
    assert w["active_energy_j"] == pytest.approx(want, rel=1e-9, abs=1e-12), label
    kwh = w["energy_j"] / 3.6e6
    assert w["emissions_g"] == pytest.approx(kwh * g_per_kwh, rel=1e-6), label


def _assert_energy_block(e: dict, country: str, stage: str) -> None:
    """A stage's energy block: the span and each window and the rest, by `_assert_window`;
    windows plus the rest are the span; powers are the energies over the duration."""
    assert e["country_iso_code"] == country and e["tracking_mode"] == "machine", stage
    assert e["idle"]["window_s"] > 0 and e["idle"]["tracking_mode"] == "machine", stage
    g_per_kwh = _g_per_kwh(country)
    _assert_window(e, e["idle"], g_per_kwh, stage)
    for name, w in e["tasks"].items():
        _assert_window(w, e["idle"], g_per_kwh, f"{stage} {name}")
    # the rest is the span less every window: the samples at all their ends
    ends = 2 * (1 + len(e["tasks"]))
    _assert_window(e["outside_tasks"], e["idle"], g_per_kwh, f"{stage} outside", ends)
    parts = [*e["tasks"].values(), e["outside_tasks"]]
    for key in WINDOW_KEYS:
        got = sum(p[key] for p in parts)
        if key == "active_energy_j":  # clipped at zero per window: the parts can add up to more
            assert got >= e[key] - 1e-9, (stage, got, e[key])
        else:
            assert got == pytest.approx(e[key], rel=1e-6, abs=1e-9), (stage, key)
    assert e["power_mean_w"] == pytest.approx(e["energy_j"] / e["duration_s"], rel=1e-9)
    for p in PARTS:
        assert e[f"{p}_power_w"] == pytest.approx(e[f"{p}_j"] / e["duration_s"], rel=1e-9)


def _assert_model_energy(workspace, backend: str) -> dict[str, dict]:
    """Each model's own figures are its window in the stage that made it; its energy per
    1,000 inferences is its evaluate loops' energy over their inferences. Returns the
    windows by model."""
    windows = {}
    for stage, models in MADE_BY.items():
        rec = _record(workspace, f"{stage}@{backend}")
        tasks = [{k: t[k] for k in WINDOW_KEYS} for t in rec["energy"]["tasks"].values()]
        for model in models:
            windows[model] = {k: rec[model][k] for k in WINDOW_KEYS}
            assert windows[model] in tasks, (stage, model)  # one of its windows
            tasks.remove(windows[model])  # and no other model's
    ev = _record(workspace, f"evaluate@{backend}")
    loops = ev["energy"]["tasks"]
    for name, m in ev["models"].items():
        if "skipped" in m:  # an optimization that could not be made: no loop
            continue
        mine = [w for k, w in loops.items() if k.startswith(f"infer_{name}#")]
        assert len(mine) == m["energy_repeats"] == 1, name  # SMALL: one repeat
        assert m["energy_loop_j"] == pytest.approx(mine[0]["energy_j"], rel=1e-9), name
        assert m["energy_loop_s"] == pytest.approx(mine[0]["duration_s"], rel=1e-9), name
        per_1k = m["energy_loop_j"] / m["inferences"] * 1000
        assert m["energy_per_1k_j"] == pytest.approx(per_1k, rel=1e-9), name
        active_1k = mine[0]["active_energy_j"] / m["inferences"] * 1000
        assert m["active_energy_per_1k_j"] == pytest.approx(active_1k, rel=1e-9), name
        assert m["energy_per_1k_min_j"] <= m["energy_per_1k_j"] <= m["energy_per_1k_max_j"]
        assert m["inferences"] >= workspace.params()["evaluate"]["energy_inferences"], name
    return windows


def _assert_headline(workspace, stages: list[str]) -> None:
    """reports/headline.json and models.csv say what the stage records add up to: each
    model's accuracy and energy to obtain (its chain of windows), and the experiment's
    totals (every stage's record but the report's)."""
    head = json.loads((workspace.path / "reports/headline.json").read_text())
    with (workspace.path / "reports/models.csv").open() as f:
        rows = {r["model"]: r for r in csv.DictReader(f)}
    backends = workspace.params()["train"]["backends"]
    evaluated = {  # a model an optimization could not make has no row
        b: {
            n: m
            for n, m in _record(workspace, f"evaluate@{b}")["models"].items()
            if "skipped" not in m
        }
        for b in backends
    }
    assert sorted(rows) == sorted(f"{m}@{b}" for b in backends for m in evaluated[b])
    for backend in backends:
        windows = _assert_model_energy(workspace, backend)
        ev = evaluated[backend]
        for model in ev:  # every evaluated model, the ones CHAIN does not list included
            per_1k = ev[model].get("energy_per_1k_j")
            got = rows[f"{model}@{backend}"]["energy_per_1k_j"]
            assert (float(got) if got else None) == per_1k, model
        for model, chain in CHAIN.items():
            row = rows[f"{model}@{backend}"]
            obtain = sum(windows[n]["energy_j"] for n in chain)
            assert float(row["obtain_j"]) == pytest.approx(obtain, rel=1e-9), model
            active = sum(windows[n]["active_energy_j"] for n in chain)
            assert float(row["obtain_active_j"]) == pytest.approx(active, rel=1e-9), model
            assert float(row["accuracy"]) == ev[model]["accuracy"], model
        mine = head[backend]
        for short, model in (("teacher", "teacher"), ("kd", "student_kd")):
            assert mine[short]["obtain_j"] == pytest.approx(
                float(rows[f"{model}@{backend}"]["obtain_j"])
            )
        for short, model in (
            ("teacher", "teacher"),
            ("kd", "student_kd"),
            ("scratch", "student_scratch"),
        ):
            assert mine[short]["acc"] == ev[model]["accuracy"], (backend, short)
    upstream = [_record(workspace, s)["energy"] for s in stages if s != "report"]
    for key, field in (("energy_j", "energy_j"), ("active_j", "active_energy_j")):
        want = sum(e[field] for e in upstream)
        assert head["total"][key] == pytest.approx(want, rel=1e-9), key
    want = sum(e["emissions_g"] for e in upstream)
    assert head["total"]["emissions_g"] == pytest.approx(want, rel=1e-9)


def _parents(runs, driver: str | None = None):
    out = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    return [r for r in out if driver is None or r.data.tags.get("greenpipe.driver") == driver]


def _children(runs, parent_id: str):
    return [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent_id]


def _assert_ledger(workspace, parent, children):
    """The parent's spent totals are the sums of its children's figures, its inherited
    totals those of the inherited children, which spent nothing and carry, under
    inherited_*, the figures recorded by the run that produced their stage's outputs."""
    spent = [c for c in children if c.data.tags.get("greenpipe.inherited") != "true"]
    inherited = [c for c in children if c not in spent]
    assert parent.data.metrics["spent/stages"] == len(spent)
    assert parent.data.metrics["inherited/stages"] == len(inherited)
    for key in RUN_KEYS:
        want = sum(c.data.metrics[key] for c in spent)
        assert parent.data.metrics[f"spent/{key}"] == pytest.approx(want, rel=1e-9), key
        want = sum(c.data.metrics[f"inherited_{key}"] for c in inherited)
        assert parent.data.metrics[f"inherited/{key}"] == pytest.approx(want, rel=1e-9), key
    for c in inherited:
        assert "energy_j" not in c.data.metrics
        recorded = _record(workspace, c.info.run_name)["energy"]
        assert c.data.tags["greenpipe.inherited_record"] == recorded["record"]["record_id"]
        assert c.data.tags["greenpipe.inherited_from"] == _run_of(workspace, recorded["record"])
        for key, field in RUN_KEYS.items():
            got = c.data.metrics[f"inherited_{key}"]
            assert got == pytest.approx(recorded[field], rel=1e-9), (c.info.run_name, key)


def _assert_stage_runs(workspace, children, stages):
    """One FINISHED child run per stage, holding the figures of the record it wrote."""
    assert sorted(r.info.run_name for r in children) == sorted(stages)
    for r in children:
        assert r.info.status == "FINISHED", r.info.run_name
        recorded = _record(workspace, r.info.run_name)["energy"]
        assert r.data.tags["greenpipe.record_id"] == recorded["record"]["record_id"]
        for key, field in RUN_KEYS.items():
            got = r.data.metrics[key]
            assert got == pytest.approx(recorded[field], rel=1e-9), (r.info.run_name, key)
        for comp in ("cpu", "ram"):
            src = r.data.tags[f"energy.source.{comp}"]
            assert src == recorded["source"][comp], src
            assert src.split(":")[0] in ("measured", "estimated"), src


def test_dvc_repro_runs_every_stage_under_one_parent(workspace):
    backends = workspace.params()["train"]["backends"]
    stages = stages_of(backends)
    known = {r.info.run_id for r in workspace.runs()}
    workspace.run("dvc", "repro")
    lock = yaml.safe_load((workspace.path / "dvc.lock").read_text())
    assert sorted(lock["stages"]) == sorted(stages)
    # plain dvc repro starts each stage in its own interpreter: nothing preloaded
    assert "preloaded_rss_mb" not in _record(workspace, "prepare")["resources"]
    runs = [r for r in workspace.runs() if r.info.run_id not in known]
    parents = _parents(runs, "dvc")
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    country = workspace.params()["tracking"]["country_iso_code"]
    for stage in stages:
        e = _record(workspace, stage)["energy"]
        _assert_energy_block(e, country, stage)
        # no driver set a parent: the logger found the invocation's for the stage's record
        assert e["record"]["parent_run_id"] is None
        run_id = _run_of(workspace, e["record"])
        assert workspace.mlflow().get_run(run_id).data.tags["mlflow.parentRunId"] == (
            parents[0].info.run_id
        )
    _assert_stage_runs(workspace, _children(runs, parents[0].info.run_id), stages)
    _assert_ledger(workspace, parents[0], _children(runs, parents[0].info.run_id))
    _assert_headline(workspace, stages)
    assert parents[0].data.tags["greenpipe.inherited_stages"] == "-"
    for backend in backends:
        ev = json.loads((workspace.path / _metrics_path(f"evaluate@{backend}")).read_text())
        ev = ev["models"]
        assert set(ev) == MODELS
        for name, m in ev.items():
            if "skipped" in m:
                continue
            assert 0.5 < m["accuracy"] <= 1.0, (backend, name)
            assert m["latency_p50_ms"] <= m["latency_p95_ms"]
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
    # the page embeds the two pictures written beside it (their drawing: tests/unit)
    pngs = {n: (workspace.path / "reports" / n).read_bytes() for n in PICTURES}
    embedded = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert sorted(base64.b64decode(i) for i in embedded) == sorted(pngs.values())
    for name, png in pngs.items():
        assert png.startswith(b"\x89PNG\r\n\x1a\n") and _png_size(png)[1] == PICTURES[name]


def _png_size(png: bytes) -> tuple[int, int]:
    import io

    import matplotlib.image as mpimg

    return mpimg.imread(io.BytesIO(png), format="png").shape[:2]


def _flat(tree: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


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
    # 3 significant digits: what is printed is within half a unit of the third digit of the
    # stored figure (a figure that happens to end in zeros, 0.0190004, prints as 0.019)
    stored = _flat(json.loads((workspace.path / "reports/headline.json").read_text()))
    for key, text in energy.items():
        assert abs(float(text) - stored[key]) <= 5e-3 * abs(stored[key]), (key, text)
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
    _assert_stage_runs(workspace, [r for r in children if r not in cached], changed)
    _assert_ledger(workspace, parents[0], children)
    _assert_headline(workspace, stages)
    # up-to-date stages: an inherited child each, and their recorded figures on the parent
    assert sorted(r.info.run_name for r in cached) == sorted(cached_stages)
    assert {r.data.tags["greenpipe.how"] for r in cached} == {"up to date in dvc.lock"}
    inherited = parents[0].data.tags["greenpipe.inherited_stages"].split(",")
    assert sorted(inherited) == sorted(cached_stages)
    # the parent holds every stage's recorded figures, those of the stages it ran and of
    # those it did not
    metrics = parents[0].data.metrics
    compress = _record(workspace, "compress")
    assert metrics["compress/ratio"] == compress["ratio"]
    assert compress["ratio"] == pytest.approx(compress["bytes_raw"] / compress["bytes_stored"])
    assert metrics["prepare/energy/energy_j"] == _record(workspace, "prepare")["energy"]["energy_j"]
    for backend in raw["train"]["backends"]:
        train = _record(workspace, f"train@{backend}")
        assert metrics[f"train/{backend}/energy/energy_j"] == train["energy"]["energy_j"]
        assert metrics[f"train/{backend}/teacher/energy_j"] == train["teacher"]["energy_j"]
        teacher = _record(workspace, f"evaluate@{backend}")["models"]["teacher"]
        assert metrics[f"evaluate/{backend}/models/teacher/accuracy"] == teacher["accuracy"]
    # the stages it ran were forks of the flow's stage servers, which had preloaded their
    # imports (greenpipe.flows.stage_server); their peak memory says how much of it that was
    for stage in changed:
        resources = _record(workspace, stage)["resources"]
        assert 0 < resources["preloaded_rss_mb"] <= resources["peak_rss_mb"], (stage, resources)
    # `greenpipe run` started them before Prefect's import and server, and the flow took
    # them over (servers.start_early, for_flow)
    assert "ready" in proc.stderr and "s after they started (before Prefect's server" in (
        proc.stderr
    )
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
    assert train.data.tags["greenpipe.inherited_from"] == _run_of(
        workspace, before["energy"]["record"]
    )
    recorded = before["energy"]["energy_j"]
    assert train.data.metrics["inherited_energy_j"] == pytest.approx(recorded)
    assert parent.data.metrics["train/torch/energy/energy_j"] == pytest.approx(recorded)
    assert parent.data.metrics["spent/energy_j"] == 0.0  # nothing ran: nothing spent
    assert parent.data.metrics["inherited/stages"] == len(children) == 13
    _assert_ledger(workspace, parent, children)


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
    _assert_ledger(workspace, exp_parents[0], children)
    by_name = {c.info.run_name: c for c in children}
    for backend in workspace.params()["train"]["backends"]:
        assert by_name[f"train@{backend}"].data.tags["greenpipe.inherited"] == "true"
        assert "greenpipe.inherited" not in by_name[f"evaluate@{backend}"].data.tags
        teacher = _record(workspace, f"train@{backend}")["teacher"]
        assert (
            exp_parents[0].data.metrics[f"train/{backend}/teacher/energy_j"]
            == (teacher["energy_j"])
        )
        # the headline on the parent: the MLflow runs table compares experiments by it
        assert 0.5 < exp_parents[0].data.metrics[f"report/headline/{backend}/kd/acc"] <= 1
    head = json.loads((workspace.path / "reports/headline.json").read_text())
    assert (
        exp_parents[0].data.metrics["report/headline/total/energy_j"] == (head["total"]["energy_j"])
    )
    _assert_headline(workspace, stages_of(workspace.params()["train"]["backends"]))


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
    paths = ("--out", "data/bad.npz", "--classes", "data/bad.json", "--metrics", "metrics/bad.json")
    proc = workspace.run(
        "python", "pipelines/prepare.py", "--params", "missing.yaml", *paths, check=False
    )
    assert proc.returncode == 2 and "missing.yaml" in proc.stderr
    raw = workspace.params()
    raw["data"].update({"source": "npz", "path": "no/such/file.npz"})
    (workspace.path / "bad.yaml").write_text(yaml.safe_dump(raw))
    proc = workspace.run(
        "python",
        "pipelines/prepare.py",
        "--params",
        "bad.yaml",
        *paths,
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
