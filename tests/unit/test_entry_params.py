"""greenpipe.entry: a stage's slice of params (only what dvc.yaml declares) and its required
path arguments."""

from __future__ import annotations

import argparse

import pytest

from greenpipe.config import Params
from greenpipe.entry import StageParams, backend_of, load, stage_parser, whole
from greenpipe.errors import UsageError
from greenpipe.optimize.prune import fine_tune_config

PARAMS = Params.model_validate({"train": {"backends": ["torch"]}})


def _slice(*declared: str) -> StageParams:
    return StageParams(PARAMS, "distill", declared)


def test_declared_keys_read_through_and_are_recorded():
    p = _slice("seed", "distill")
    assert p.seed == 42 and p.distill.temperature == 4.0
    assert p.distill.model.cnn.hidden == 128
    assert p.keys_read == {"seed", "distill.temperature", "distill.model.cnn.hidden"}


@pytest.mark.parametrize(
    "read", ["train.backends", "optimize.quantization", "evaluate.warmup", "experiment"]
)
def test_an_undeclared_key_is_a_one_line_error_naming_it_and_dvc_yaml(read):
    p = _slice("seed", "distill", "evaluate.latency_runs")
    with pytest.raises(UsageError) as err:
        for part in read.split("."):
            p = getattr(p, part)
    msg = str(err.value)
    assert f"'{read}'" in msg and "dvc.yaml" in msg and "'distill'" in msg and "\n" not in msg


def test_a_partly_declared_section_opens_only_its_declared_keys():
    p = _slice("evaluate.warmup")
    assert p.evaluate.warmup == 20
    with pytest.raises(UsageError, match="evaluate.latency_runs"):
        _ = p.evaluate.latency_runs
    with pytest.raises(UsageError, match="'evaluate'"):  # the whole section at once
        p.evaluate.model_dump()


def test_a_copy_with_updates_frees_the_updated_keys_only():
    """optimize fine-tunes with distill's loss settings and prune's epochs and lr."""
    p = StageParams(PARAMS, "optimize", ["distill.loss", "optimize.prune"])
    cfg = fine_tune_config(p.distill, p.optimize.prune)
    assert (cfg.epochs, cfg.lr, cfg.loss) == (20, 0.001, "logit_std")
    with pytest.raises(UsageError, match="distill.batch_size"):
        _ = cfg.batch_size
    assert "distill.epochs" not in p.keys_read and "distill.lr" not in p.keys_read


def test_a_property_reads_through_the_slice():
    p = _slice("distill.model")
    assert p.distill.model.settings.hidden == 128  # ModelSpec.settings: getattr(self, arch)
    assert {"distill.model.arch", "distill.model.cnn.hidden"} <= p.keys_read


def test_the_plumbing_sees_the_whole_params():
    p = _slice("seed")
    assert whole(p) is PARAMS
    assert backend_of(argparse.Namespace(backend="torch"), p) == "torch"
    with pytest.raises(UsageError, match="train.backends"):
        backend_of(argparse.Namespace(backend="tensorflow"), p)


def test_load_hands_the_keys_the_dvc_yaml_beside_the_entry_point_declares(tmp_path):
    (tmp_path / "pipelines").mkdir()
    script = tmp_path / "pipelines" / "distill.py"
    (tmp_path / "dvc.yaml").write_text(
        "stages:\n  distill:\n    foreach: [torch]\n    do:\n      cmd: x\n"
        "      params:\n        - seed\n        - distill.alpha\n"
    )
    (tmp_path / "params.yaml").write_text("seed: 7\n")
    p = stage_parser(str(script), "doc")
    args = p.parse_args(["--params", str(tmp_path / "params.yaml"), "--metrics", "m.json"])
    params = load(args)
    assert (params.seed, params.distill.alpha) == (7, 0.7)
    with pytest.raises(UsageError, match="distill.temperature"):
        _ = params.distill.temperature
    args.stage = "report"
    with pytest.raises(UsageError, match="declares no params for stage 'report'"):
        load(args)


def test_every_path_argument_is_required(capsys):
    p = stage_parser("pipelines/clean.py", "doc", {"--in": "input", "--grid": "picture"})
    with pytest.raises(SystemExit):
        p.parse_args(["--in", "a.npz", "--grid", "g.png"])  # no --metrics
    assert "--metrics" in capsys.readouterr().err
    args = p.parse_args(["--in", "a.npz", "--grid", "g.png", "--metrics", "m.json"])
    assert (args.in_, args.grid, args.params, args.stage) == (
        "a.npz",
        "g.png",
        "params.yaml",
        "clean",
    )
