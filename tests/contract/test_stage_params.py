"""Each stage reads exactly the params keys dvc.yaml declares for it (its `params:`).

A stage sees params.yaml only through its slice (greenpipe.entry.StageParams), which refuses
an undeclared key with a one-line error and records the keys read. Here every stage runs, as
dvc.yaml commands it, on tiny data in a copy of the repo (tracking off, one process, every
framework): a stage that reads an undeclared key fails; a declared key that no stage code
path read is reported. The tracking keys are read by the tracking context, not the stage.
"""

from __future__ import annotations

import copy
import importlib.util
import re
import shlex
import shutil
import typing
from pathlib import Path

import pytest
import yaml

from greenpipe import entry
from greenpipe.config import BackendName
from greenpipe.tracking import provenance as prov

ROOT = Path(__file__).resolve().parents[2]
TINY = {  # every code path of the default params.yaml, on as little work as they allow
    "augment": {"factor": 2},
    "train": {"epochs": 1, "patience": 1},
    "distill": {"epochs": 1, "patience": 1},
    "optimize": {"calibration_samples": 16, "prune": {"fine_tune_epochs": 1}},
    "evaluate": {
        "warmup": 1,
        "latency_runs": 10,
        "energy_inferences": 1000,
        "energy_repeats": 1,
        "energy_min_seconds": 0.01,
        "peak_memory": False,
        "bootstrap_samples": 100,
    },
}


def _merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = _merge(base.get(k, {}), v) if isinstance(v, dict) else v
    return out


def _covers(read: str, declared: str) -> bool:
    """A key read covers a declared one at, under or (a whole section read) above it."""
    return read == declared or read.startswith(declared + ".") or declared.startswith(read + ".")


def _main_of(script: Path):
    spec = importlib.util.spec_from_file_location(f"stage_{script.stem}", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


@pytest.fixture(scope="module")
def slices(tmp_path_factory) -> dict[str, entry.StageParams]:
    """{stage: the slice its run was handed}, every stage of dvc.yaml run in order."""
    ws = tmp_path_factory.mktemp("stage-params")
    shutil.copytree(ROOT / "pipelines", ws / "pipelines")
    shutil.copy2(ROOT / "dvc.yaml", ws / "dvc.yaml")
    raw = _merge(yaml.safe_load((ROOT / "params.yaml").read_text()), TINY)
    raw["train"]["backends"] = list(typing.get_args(BackendName))
    (ws / "params.yaml").write_text(yaml.safe_dump(raw))
    handed: dict[str, entry.StageParams] = {}
    real_load = entry.load

    def load(args):
        params = real_load(args)
        handed[f"{args.stage}@{args.backend}" if hasattr(args, "backend") else args.stage] = params
        return params

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GREENPIPE_TRACKING", "off")
        mp.chdir(ws)
        mp.setattr(entry, "load", load)
        for stage, spec in prov.resolved_stages(ws).items():  # dvc.yaml's order: deps first
            _python, script, *argv = shlex.split(spec["cmd"])
            _main_of(ws / script)(argv)
            assert stage in handed, f"{stage} did not load its params through entry.load"
    return handed


def test_every_stage_reads_every_key_it_declares_and_no_other(slices):
    assert {s.partition("@")[0] for s in slices} == {
        p.stem for p in (ROOT / "pipelines").glob("*.py")
    }
    for stage, params in slices.items():
        declared = set(prov.stage_param_keys(ROOT, stage)) - set(entry.TRACKING_KEYS)
        read = params.keys_read
        unread = {d for d in declared if not any(_covers(r, d) for r in read)}
        assert not unread, f"{stage} declares params it never reads: {sorted(unread)}"


def test_pipelines_see_params_only_through_their_slice():
    """No entry point reaches past its slice: no whole config, no second params loader."""
    for script in sorted((ROOT / "pipelines").glob("*.py")):
        text = script.read_text()
        for bypass in (r"\bwhole\(", r"\bload_params\b", r"\b_model\b", r"\bParams\b"):
            assert not re.search(bypass, text), f"{script.name} bypasses its params slice: {bypass}"
