"""Sweep plans: a YAML grid of parameter variations, expanded into validated variants.

A plan file looks like::

    name: kd-temperature             # letters, digits, - and _
    base:                            # optional: applied to every variant
      train.epochs: 10
    grid:                            # every combination becomes one variant
      distill.temperature: [2, 4, 8]
      distill.alpha: [0.5, 0.9]
    variants:                        # optional: more variants, listed one by one
      - {distill.temperature: 1, distill.alpha: 0.0}

A plan needs a grid, a list of variants, or both.

Each variant is params.yaml with its overrides applied, validated like params.yaml itself,
so a bad value fails before any variant runs.
"""

from __future__ import annotations

import copy
import itertools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from greenpipe.config import ConfigError, validate_params


@dataclass(frozen=True)
class Variant:
    """One point of the grid: a name and its dotted-key overrides."""

    name: str
    overrides: dict[str, Any]

    def set_args(self) -> list[str]:
        """`-S key=value` arguments for `dvc exp run` (values as YAML, as DVC parses them)."""
        args: list[str] = []
        for key, value in self.overrides.items():
            # one line whatever its length: a wrapped value breaks DVC's -S parser
            text = yaml.safe_dump(value, default_flow_style=True, width=1 << 30).strip()
            text = text.removesuffix("\n...").strip()
            args += ["-S", f"{key}={text}"]
        return args


def _set(raw: dict, dotted: str, value: Any) -> None:
    node = raw
    *parents, last = dotted.split(".")
    for part in parents:
        if not isinstance(node.get(part), dict):
            raise ConfigError(f"plan key '{dotted}': '{part}' is not a section of params.yaml")
        node = node[part]
    node[last] = value


def apply(raw_params: dict, overrides: dict[str, Any]) -> dict:
    """params.yaml content with dotted overrides applied (the input is not modified)."""
    out = copy.deepcopy(raw_params)
    for key, value in overrides.items():
        _set(out, key, value)
    return out


def _slug(value: Any) -> str:
    text = yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()
    return re.sub(r"[^A-Za-z0-9.]+", "", text)[:20] or "x"


def load_plan(path: str | Path, raw_params: dict) -> tuple[str, list[Variant]]:
    """(sweep name, variants) from a plan file; every variant is validated against the config."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"sweep plan '{p}' not found; see plans/ for examples")
    plan = yaml.safe_load(p.read_text()) or {}
    unknown = set(plan) - {"name", "base", "grid", "variants"}
    if unknown:
        raise ConfigError(
            f"plan '{p}': unknown key(s) {sorted(unknown)}; use name, base, grid, variants"
        )
    name = str(plan.get("name") or p.stem)
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,40}", name):
        raise ConfigError(f"plan name {name!r}: use 1-40 letters, digits, '-' or '_'")
    base, grid, listed = plan.get("base") or {}, plan.get("grid") or {}, plan.get("variants")
    if not isinstance(grid, dict) or not all(isinstance(v, list) and v for v in grid.values()):
        raise ConfigError(f"plan '{p}': grid must map params keys to non-empty lists of values")
    if listed is not None and (
        not isinstance(listed, list) or not all(isinstance(v, dict) and v for v in listed)
    ):
        raise ConfigError(f"plan '{p}': variants must be a list of non-empty key: value maps")
    if not isinstance(base, dict):
        raise ConfigError(f"plan '{p}': base must map params keys to values")
    combos = [dict(v) for v in listed or []]
    if grid:
        combos += [dict(zip(grid, c, strict=True)) for c in itertools.product(*grid.values())]
    if not combos:
        raise ConfigError(f"plan '{p}': give a grid or a list of variants")
    variants = []
    for i, combo in enumerate(combos, 1):
        overrides = {**base, **combo}
        try:
            validate_params(apply(raw_params, overrides))
        except ConfigError as exc:
            raise ConfigError(f"plan '{p}', variant {i} {combo}: {exc}") from None
        label = "-".join(f"{k.split('.')[-1]}{_slug(v)}" for k, v in combo.items())
        variants.append(Variant(f"{name}-{i}-{label}"[:60], overrides))
    return name, variants
