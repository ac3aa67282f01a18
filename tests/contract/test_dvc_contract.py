"""dvc.yaml is a contract: params keys exist and validate, entry points exist, paths agree.

The stages are DVC's own resolution of dvc.yaml for every framework, not only those
params.yaml enables: DVC expands the foreach over `${train.backends}`, so it resolves a
copy whose params.yaml lists them all (what `dvc exp run -S train.backends=[...]` would run).
"""

from __future__ import annotations

import copy
import re
import shlex
import typing
from pathlib import Path

import pytest
import yaml

from greenpipe.config import BackendName, Params, load_params
from greenpipe.tracking import provenance as prov

ROOT = Path(__file__).resolve().parents[2]
DVC = yaml.safe_load((ROOT / "dvc.yaml").read_text())
RAW_PARAMS = yaml.safe_load((ROOT / "params.yaml").read_text())
ALL_BACKENDS = list(typing.get_args(BackendName))
EVERY_FRAMEWORK = copy.deepcopy(RAW_PARAMS)
EVERY_FRAMEWORK["train"]["backends"] = ALL_BACKENDS
STAGES = prov.resolved_stages(ROOT, params=EVERY_FRAMEWORK)
_paths = prov.paths_of


def test_every_framework_has_its_per_framework_stages():
    assert all(
        spec["foreach"] == "${train.backends}"
        for spec in DVC["stages"].values()
        if "foreach" in spec
    ), "the per-framework stages iterate over train.backends"
    foreach = [name for name, spec in DVC["stages"].items() if "foreach" in spec]
    assert foreach, "dvc.yaml has per-framework stages"
    for name in foreach:
        assert {s for s in STAGES if s.startswith(f"{name}@")} == {
            f"{name}@{b}" for b in ALL_BACKENDS
        }


def test_resolution_is_the_one_dvc_repro_uses():
    """provenance resolves dvc.yaml with DVC's resolver alone (cheap enough for a stage
    process); it must agree with DVC's index of the repository, stage by stage, and the
    params keys read as plain YAML with DVC's resolved ones."""
    from dvc.dependency.param import ParamsDependency
    from dvc.repo import Repo

    with prov.resolution_copy(ROOT, EVERY_FRAMEWORK, dvc_repo=True) as tmp, Repo(str(tmp)) as repo:
        index = {s.name: s for s in repo.index.stages}  # addressing: relative to the cwd
        resolved = prov.resolved_stages(tmp)
        assert set(index) == set(resolved) == set(STAGES)
        for name, st in index.items():
            spec = resolved[name]
            files = [d for d in st.deps if not isinstance(d, ParamsDependency)]
            assert sorted(d.def_path for d in files) == sorted(_paths(spec.get("deps"))), name
            outs = [_paths(spec.get(k)) for k in ("outs", "metrics", "plots")]
            assert sorted(o.def_path for o in st.outs) == sorted(sum(outs, [])), name
            assert st.cmd == spec["cmd"], name
            keys = [k for p in st.params for k in p.params]
            assert keys == prov.stage_param_keys(ROOT, name) == spec["params"], name


def _lookup(d: dict, dotted: str):
    for part in dotted.split("."):
        assert isinstance(d, dict) and part in d, f"params.yaml has no key '{dotted}'"
        d = d[part]
    return d


def test_params_yaml_validates():
    assert isinstance(load_params(ROOT / "params.yaml"), Params)


def test_params_yaml_sets_every_knob_explicitly():
    """Every field of the config models appears in params.yaml (no hidden defaults)."""

    def walk(model, raw, prefix=""):
        for name, _field in type(model).model_fields.items():
            assert name in raw, f"params.yaml lacks '{prefix}{name}'"
            value = getattr(model, name)
            if hasattr(type(value), "model_fields"):
                walk(value, raw[name], f"{prefix}{name}.")

    walk(Params.model_validate(RAW_PARAMS), RAW_PARAMS)


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_stage_params_exist_and_build_config(stage):
    for key in STAGES[stage].get("params", []):
        _lookup(RAW_PARAMS, key)
        obj = Params.model_validate(RAW_PARAMS)
        for part in key.split("."):
            obj = getattr(obj, part)  # the key maps onto the typed model


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_stage_entry_point_exists_and_is_first_dep(stage):
    cmd = shlex.split(STAGES[stage]["cmd"])
    assert cmd[:2] == ["python", f"pipelines/{stage.split('@')[0]}.py"]
    assert (ROOT / cmd[1]).is_file()
    assert cmd[1] in _paths(STAGES[stage]["deps"])


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_cmd_paths_match_declared_deps_and_outs(stage):
    spec = STAGES[stage]
    declared = set()
    for kind in ("deps", "outs", "metrics", "plots"):
        declared |= set(_paths(spec.get(kind)))
    args = shlex.split(spec["cmd"])[2:]
    flags_with_names = {"--backend"}
    values = [
        a.split("=", 1)[-1]
        for prev, a in zip(["", *args[:-1]], args, strict=True)
        if not a.startswith("--") and prev not in flags_with_names
    ]
    for v in values:
        assert v in declared, f"{stage}: '{v}' in cmd is not a declared dep/out/metric/plot"
    # inputs/ holds the data that data.path (a param) points into: a dep, not an argument
    # code deps (pipelines/, src/, and the model file a model section names) are read, not passed
    code = r"(pipelines|src)/|inputs$|\$\{\w+\.model\.file\}$"
    data_like = [p for p in declared if not re.match(code, p)]
    for p in data_like:
        assert p in values, f"{stage}: declared '{p}' is never passed to the entry point"


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_metrics_and_plots_are_not_cached(stage):
    for kind in ("metrics", "plots"):
        for entry in STAGES[stage].get(kind, []) or []:
            assert isinstance(entry, dict), f"{stage}: {entry} must set cache: false"
            assert next(iter(entry.values())).get("cache") is False


def test_every_entry_point_is_a_stage():
    scripts = {p.stem for p in (ROOT / "pipelines").glob("*.py") if not p.stem.startswith("_")}
    assert scripts == {s.split("@")[0] for s in STAGES}


def test_stage_record_is_named_after_stage_and_is_a_cached_out():
    """Each stage's record (figures + energy block) is a cached out: not a DVC metric, so
    that `dvc exp show` compares the headline only, and not an uncached out, for which DVC
    would save no run-cache entry (an unchanged stage could then not be restored)."""
    for stage, spec in STAGES.items():
        name, _, backend = stage.partition("@")
        want = f"metrics/models/{backend}/{name}.json" if backend else f"metrics/{name}.json"
        assert want in spec["outs"], f"{stage}: {want} must be a plain (cached) out"
        assert want not in _paths(spec.get("metrics")), f"{stage}: {want} is a record"
        if stage in prov.resolved_stages(ROOT):  # the frameworks params.yaml enables
            assert want in prov.stage_metric_paths(ROOT, stage)
    metrics = [p for spec in STAGES.values() for p in _paths(spec.get("metrics"))]
    assert metrics == ["reports/headline.json"]


def test_top_level_plots_read_the_models_table():
    """`dvc plots diff` draws accuracy against energy across experiments (scatter) from the
    report's one-row-per-model CSV, an uncached out of the report stage."""
    scatter = [s for p in DVC["plots"] for s in p.values() if s.get("template") == "scatter"]
    assert {s["x"] for s in scatter} >= {"obtain_j", "energy_per_1k_j"}
    assert all(s["y"] == {"reports/models.csv": "accuracy"} for s in scatter)
    assert "reports/models.csv" in _paths(STAGES["report"]["outs"])


def test_per_framework_stages_pass_their_backend():
    for stage, spec in STAGES.items():
        if "@" in stage:
            assert f"--backend {stage.split('@')[1]}" in spec["cmd"]


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_what_changes_an_energy_figures_meaning_is_a_dvc_param_of_every_stage(stage):
    """A stage restored from DVC's cache keeps the figures of the mode it was measured in:
    the mode (and the grid) must be params, so that changing them re-runs the stage instead of
    mixing machine-mode and process-mode figures."""
    declared = STAGES[stage].get("params", [])
    for key in ("tracking.codecarbon_mode", "tracking.country_iso_code"):
        assert key in declared, f"{stage} must list {key} in its dvc.yaml params"
