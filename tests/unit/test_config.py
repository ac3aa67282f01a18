"""greenpipe.config: defaults, the repo's params.yaml, and one-line errors naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from greenpipe.config import ConfigError, Params, load_params, validate_params

REPO = Path(__file__).resolve().parents[2]


def _config_error(raw) -> str:
    """The message of the ConfigError that `raw` raises (checked to be one line)."""
    with pytest.raises(ConfigError) as ei:
        validate_params(raw)
    msg = str(ei.value)
    assert "\n" not in msg and msg.strip() == msg
    return msg


def test_defaults_build_and_are_frozen():
    p = Params()
    assert p.data.source == "digits" and p.data.path is None
    assert p.train.epochs == 30 and p.train.model.cnn.channels == (32, 64)
    assert p.distill.model.cnn.channels == (16, 32) and p.distill.model.cnn.hidden == 128
    assert p.compress.dtype == "uint8" and p.compress.codec == "zlib"
    with pytest.raises(ValidationError):
        p.train.epochs = 3


def test_empty_mapping_gives_the_defaults():
    assert validate_params({}) == Params()


def test_repo_params_yaml_loads_with_its_values():
    path = REPO / "params.yaml"
    raw = yaml.safe_load(path.read_text())
    p = load_params(path)
    assert p.seed == raw["seed"]
    assert p.experiment == raw["experiment"]
    assert p.distill.epochs == raw["distill"]["epochs"]
    assert p.distill.temperature == raw["distill"]["temperature"]
    assert p.train.model.cnn.channels == tuple(raw["train"]["model"]["cnn"]["channels"])
    assert p.tracking.country_iso_code == raw["tracking"]["country_iso_code"]


@pytest.mark.parametrize(
    "raw, key",
    [
        ({"epochz": 1}, "epochz"),
        ({"train": {"epochz": 10}}, "train.epochz"),
        ({"train": {"model": {"cnn": {"channelz": [8]}}}}, "train.model.cnn.channelz"),
        ({"distill": {"temprature": 2.0}}, "distill.temprature"),
    ],
)
def test_unknown_key_is_named(raw, key):
    msg = _config_error(raw)
    assert f"unknown key '{key}'" in msg


@pytest.mark.parametrize(
    "section, field, value",
    [
        ("train", "epochs", "ten"),
        ("train", "epochs", 10.5),
        ("train", "epochs", 0),
        ("train", "lr", 0),
        ("distill", "alpha", 1.5),
        ("distill", "alpha", -0.1),
        ("distill", "temperature", 0),
        ("tracking", "country_iso_code", "France"),
        ("tracking", "country_iso_code", "fra"),
        ("data", "source", "tfrecord"),
        ("compress", "level", 10),
        ("train", "deterministic", "sometimes"),
        ("distill", "deterministic", 2),
    ],
)
def test_bad_value_names_the_key(section, field, value):
    msg = _config_error({section: {field: value}})
    assert msg.startswith(f"bad value for '{section}.{field}'")
    assert repr(value) in msg


@pytest.mark.parametrize(
    "section, field, value",
    [
        ("train", "epochs", 1),
        ("train", "lr", 1e-9),
        ("distill", "alpha", 0.0),
        ("distill", "alpha", 1.0),
        ("tracking", "country_iso_code", "USA"),
        ("compress", "level", 9),
        ("train", "deterministic", False),
    ],
)
def test_boundary_values_are_accepted(section, field, value):
    p = validate_params({section: {field: value}})
    assert getattr(getattr(p, section), field) == value


def test_a_section_that_is_not_a_mapping_is_named():
    msg = _config_error({"train": 5})
    assert msg.startswith("bad value for 'train'")


def test_non_positive_channels_name_the_model_section():
    msg = _config_error({"train": {"model": {"cnn": {"channels": [16, 0]}}}})
    assert "'train.model.cnn'" in msg and "channels" in msg


def test_npz_source_needs_a_path():
    msg = _config_error({"data": {"source": "npz"}})
    assert "'data'" in msg and "data.path" in msg
    p = validate_params({"data": {"source": "npz", "path": "x.npz"}})
    assert p.data.path == "x.npz"


def test_several_problems_report_the_first_and_count_the_rest():
    msg = _config_error({"train": {"epochs": 0, "lr": 0}})
    assert "'train.epochs'" in msg and "(and 1 more problem(s))" in msg


@pytest.mark.parametrize("raw", [[1, 2], "seed: 3", 42])
def test_top_level_must_be_a_mapping(raw):
    assert "mapping" in _config_error(raw)


def test_pattern_rule_is_shown_as_declared():
    msg = _config_error({"tracking": {"country_iso_code": "France"}})
    assert "^[A-Z]{3}$" in msg


def test_boolean_for_an_integer_is_a_type_error():
    msg = _config_error({"train": {"epochs": True}})
    assert "'train.epochs'" in msg


# --- load_params: the file edge -----------------------------------------------------------


def test_load_params_reads_a_file(tmp_path):
    f = tmp_path / "params.yaml"
    f.write_text("seed: 7\ntrain:\n  epochs: 3\n")
    p = load_params(f)
    assert p.seed == 7 and p.train.epochs == 3 and p.train.lr == Params().train.lr


def test_load_params_empty_file_gives_defaults(tmp_path):
    f = tmp_path / "params.yaml"
    f.write_text("")
    assert load_params(f) == Params()


def test_load_params_missing_file(tmp_path):
    f = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError) as ei:
        load_params(f)
    msg = str(ei.value)
    assert "not found" in msg and str(f) in msg and "\n" not in msg


def test_load_params_invalid_yaml_names_the_line(tmp_path):
    f = tmp_path / "params.yaml"
    f.write_text("seed: 1\ntrain:\n  epochs: [1, 2\nlr: 3\n")
    with pytest.raises(ConfigError) as ei:
        load_params(f)
    msg = str(ei.value)
    assert "not valid YAML" in msg and "at line" in msg and "\n" not in msg


def test_load_params_unknown_nested_key_from_file(tmp_path):
    f = tmp_path / "params.yaml"
    f.write_text("train:\n  epochz: 10\n")
    with pytest.raises(ConfigError, match=r"unknown key 'train\.epochz'"):
        load_params(f)


def test_backends_must_be_known_and_unique():
    from greenpipe.config import ConfigError, validate_params

    assert validate_params({"train": {"backends": ["tensorflow"]}}).train.backends == (
        "tensorflow",
    )
    with pytest.raises(ConfigError, match="train.backends"):
        validate_params({"train": {"backends": ["jax"]}})
    with pytest.raises(ConfigError, match="twice"):
        validate_params({"train": {"backends": ["torch", "torch"]}})
    with pytest.raises(ConfigError, match="train.backends"):
        validate_params({"train": {"backends": []}})


def test_backend_argument_must_be_listed_in_params():
    import argparse

    from greenpipe.config import Params
    from greenpipe.entry import backend_of
    from greenpipe.errors import UsageError

    params = Params.model_validate({"train": {"backends": ["torch"]}})
    assert backend_of(argparse.Namespace(backend="torch"), params) == "torch"
    with pytest.raises(UsageError, match="tensorflow"):
        backend_of(argparse.Namespace(backend="tensorflow"), params)


def test_a_country_codecarbon_does_not_know_is_an_error_not_the_world_average():
    """CodeCarbon would silently use the world-average grid for 'FRX'; we refuse it."""
    msg = _config_error({"tracking": {"country_iso_code": "FRX"}})
    assert "tracking.country_iso_code" in msg and "'FRX'" in msg and "FRA" in msg
    assert "\n" not in msg
    from greenpipe.config import codecarbon_countries

    assert {"FRA", "DEU", "USA"} <= codecarbon_countries()
