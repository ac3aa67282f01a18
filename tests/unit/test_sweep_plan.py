"""Sweep plans: grid expansion, validation of every variant, and the -S arguments for DVC."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from greenpipe.config import ConfigError
from greenpipe.sweep import apply, load_plan

ROOT = Path(__file__).resolve().parents[2]
RAW = yaml.safe_load((ROOT / "params.yaml").read_text())


def _plan(tmp_path, text: str) -> Path:
    p = tmp_path / "plan.yaml"
    p.write_text(text)
    return p


def test_grid_is_the_cartesian_product_with_base_applied(tmp_path):
    plan = _plan(
        tmp_path,
        "name: g\nbase:\n  train.epochs: 3\ngrid:\n"
        "  distill.temperature: [2.0, 4.0]\n  distill.alpha: [0.1, 0.5, 0.9]\n",
    )
    name, variants = load_plan(plan, RAW)
    assert name == "g" and len(variants) == 6
    assert len({v.name for v in variants}) == 6
    assert all(v.overrides["train.epochs"] == 3 for v in variants)
    combos = {(v.overrides["distill.temperature"], v.overrides["distill.alpha"]) for v in variants}
    assert combos == {(t, a) for t in (2.0, 4.0) for a in (0.1, 0.5, 0.9)}


def test_listed_variants_come_first_then_the_grid(tmp_path):
    plan = _plan(
        tmp_path,
        "name: l\nbase:\n  train.epochs: 3\nvariants:\n"
        "  - {compress.dtype: float32, compress.codec: none}\n"
        "  - {compress.codec: zstd, compress.level: 19}\n"
        "grid:\n  compress.level: [1, 9]\n",
    )
    _, variants = load_plan(plan, RAW)
    assert [v.overrides for v in variants] == [
        {"train.epochs": 3, "compress.dtype": "float32", "compress.codec": "none"},
        {"train.epochs": 3, "compress.codec": "zstd", "compress.level": 19},
        {"train.epochs": 3, "compress.level": 1},
        {"train.epochs": 3, "compress.level": 9},
    ]
    assert variants[0].name == "l-1-dtypefloat32-codecnone"


def test_set_args_are_yaml_values_dvc_parses(tmp_path):
    plan = _plan(tmp_path, "grid:\n  train.backends: [[torch], [tensorflow]]\n")
    _, variants = load_plan(plan, RAW)
    assert variants[0].set_args() == ["-S", "train.backends=[torch]"]
    parsed = yaml.safe_load(variants[1].set_args()[1].split("=", 1)[1])
    assert parsed == ["tensorflow"]


def test_a_long_value_stays_on_one_line_for_dvc():
    """YAML wraps flow lists at 80 columns by default; DVC's -S parser fails on the newline
    (plans/realistic.yaml's augment.transforms failed in 1 s)."""
    _, variants = load_plan(ROOT / "plans/realistic.yaml", RAW)
    args = variants[0].set_args()
    assert all("\n" not in a for a in args)
    value = next(a for a in args if a.startswith("augment.transforms="))
    assert len(yaml.safe_load(value.split("=", 1)[1])) == 4 and len(value) > 80


def test_apply_does_not_modify_its_input():
    before = yaml.safe_dump(RAW)
    out = apply(RAW, {"distill.alpha": 0.1})
    assert out["distill"]["alpha"] == 0.1 and yaml.safe_dump(RAW) == before


@pytest.mark.parametrize(
    "text, needle",
    [
        ("grid:\n  distill.alpha: [0.5, 1.5]\n", "distill.alpha"),
        ("grid:\n  distill.alphaa: [0.5]\n", "distill.alphaa"),
        ("grid:\n  nosuch.key: [1]\n", "nosuch"),
        ("grid: {}\n", "grid"),
        ("grid:\n  distill.alpha: 0.5\n", "grid"),
        ("name: 'bad name!'\ngrid:\n  distill.alpha: [0.5]\n", "plan name"),
        ("grids:\n  distill.alpha: [0.5]\n", "unknown key"),
        ("variants: {distill.alpha: 0.5}\n", "variants"),
        ("variants:\n  - {}\n", "variants"),
        ("variants:\n  - {distill.alpha: 2.0}\n", "distill.alpha"),
        ("base: [1]\ngrid:\n  distill.alpha: [0.5]\n", "base"),
    ],
)
def test_bad_plans_fail_with_one_line(tmp_path, text, needle):
    with pytest.raises(ConfigError, match=needle.replace(".", r"\.")) as err:
        load_plan(_plan(tmp_path, text), RAW)
    assert "\n" not in str(err.value)


def test_missing_plan(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_plan(tmp_path / "none.yaml", RAW)


def test_shipped_plans_are_valid():
    for plan in sorted((ROOT / "plans").glob("*.yaml")):
        name, variants = load_plan(plan, RAW)
        assert variants, plan
