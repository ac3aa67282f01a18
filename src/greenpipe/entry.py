"""Shared plumbing for the pipelines/ entry points: arguments, the stage's slice of params,
the tracking context, the error boundary.

Every path a stage reads or writes comes on its command line from dvc.yaml (no defaults in
code), and the stage sees only the params keys dvc.yaml declares for it (StageParams).
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import keyword
import os
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from greenpipe import artifacts
from greenpipe.backends import Backend, get_backend
from greenpipe.config import Params, load_params
from greenpipe.errors import UsageError, run_main
from greenpipe.tracking import provenance as prov
from greenpipe.tracking import stage as tracking

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TORCH_CPP_LOG_LEVEL", "ERROR")

# keys every stage declares because the meaning of its energy figures depends on them; the
# tracking context reads them (from the whole params), the stage's own code does not
TRACKING_KEYS = ("tracking.codecarbon_mode", "tracking.country_iso_code")


def stage_parser(
    script: str, description: str, paths: dict[str, str] | None = None
) -> argparse.ArgumentParser:
    """The parser of the entry point `script` (its __file__; the stage is its name): --params,
    --metrics and each of `paths` ({flag: help}), all required but --params: dvc.yaml passes
    every path. --params defaults to params.yaml, DVC's own params file (the one whose keys
    dvc.yaml's `params:` name without naming a file)."""
    stage = Path(script).stem
    p = argparse.ArgumentParser(prog=f"pipelines/{stage}.py", description=description)
    p.add_argument("--params", default="params.yaml", help="params file (default params.yaml)")
    p.add_argument("--metrics", required=True, help="the stage's record (metrics JSON)")
    for flag, text in (paths or {}).items():
        dest = flag.lstrip("-").replace("-", "_")
        p.add_argument(
            flag, dest=dest + "_" if keyword.iskeyword(dest) else dest, required=True, help=text
        )
    p.set_defaults(stage=stage, repo=Path(script).resolve().parents[1])
    return p


def backend_parser(
    script: str, description: str, paths: dict[str, str] | None = None
) -> argparse.ArgumentParser:
    """A stage parser for the per-framework stages (dvc.yaml foreach over train.backends)."""
    p = stage_parser(script, description, paths)
    p.add_argument("--backend", required=True, help="framework: one of train.backends")
    return p


class StageParams:
    """A stage's slice of params.yaml: the keys dvc.yaml declares for it, as a Kedro node gets
    `params:<section>`. Attributes read through to the validated config; reading a key dvc.yaml
    does not declare raises a one-line UsageError that names it. `keys_read` collects the keys
    read (a config's own property reads through the slice; a pydantic method such as
    model_dump reads the whole section), which tests/contract compares with the declared ones."""

    __slots__ = ("_model", "_stage", "_declared", "_path", "_read", "_free")

    def __init__(self, model: BaseModel, stage: str, declared, path="", read=None, free=()):
        self._model, self._stage, self._declared = model, stage, frozenset(declared)
        self._path, self._read, self._free = path, set() if read is None else read, set(free)

    @property
    def keys_read(self) -> set[str]:
        return self._read

    def _covered(self, key: str) -> bool:
        return any(key == d or key.startswith(d + ".") for d in self._declared)

    def _refused(self, key: str) -> UsageError:
        return UsageError(
            f"stage '{self._stage}' reads params key '{key or '(all of params.yaml)'}', which "
            "dvc.yaml does not declare for it: add it to the stage's params in dvc.yaml"
        )

    def _view(self, model: BaseModel, key: str, declared=None, free=()) -> StageParams:
        return StageParams(model, self._stage, declared or self._declared, key, self._read, free)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):  # no params key: copy, pickle and friends probing the class
            raise AttributeError(name)
        model = self._model
        key = f"{self._path}.{name}" if self._path else name
        if name in type(model).model_fields:
            return self._field(name, key, getattr(model, name))
        if name == "model_copy":  # the updated keys come from elsewhere: free to read

            def model_copy(update: dict | None = None, deep: bool = False) -> StageParams:
                copy = model.model_copy(update=update, deep=deep)
                return self._view(copy, self._path, free=tuple(update or ()))

            return model_copy
        attr = inspect.getattr_static(type(model), name, None)
        if not hasattr(BaseModel, name) and isinstance(attr, property):
            return attr.fget(self)  # a config's own property: its reads go through this view
        if not hasattr(BaseModel, name) and inspect.isfunction(attr):
            return types.MethodType(attr, self)
        if not self._covered(self._path):  # model_dump, model_extra, ...: the whole section
            raise self._refused(self._path)
        self._read.add(self._path)
        return getattr(model, name)

    def _field(self, name: str, key: str, value: Any) -> Any:
        free = name in self._free
        if free or self._covered(key):
            if isinstance(value, BaseModel):
                return self._view(value, key, self._declared | {key} if free else None)
            if not free:
                self._read.add(key)
            return value
        if isinstance(value, BaseModel):  # refused key by key, so the error names the key
            return self._view(value, key)
        raise self._refused(key)

    def __repr__(self) -> str:
        return f"StageParams({self._stage!r}, {self._path or 'params'}, {sorted(self._declared)})"


def whole(params: StageParams | Params) -> Params:
    """The whole validated params behind a stage's slice: for the plumbing here only (the
    tracking context, the --backend check), never for a stage's own code."""
    return object.__getattribute__(params, "_model") if isinstance(params, StageParams) else params


def backend_of(args: argparse.Namespace, params: StageParams | Params) -> str:
    """The --backend argument, checked against train.backends (a usage error otherwise). A
    guard on how the stage was called, not an input of what it computes: the per-framework
    stages do not declare train.backends, so that adding or dropping a framework does not
    re-run the others' stages."""
    backends = whole(params).train.backends
    if args.backend not in backends:
        raise UsageError(
            f"--backend {args.backend!r} is not in train.backends "
            f"{list(backends)}; add it there or pick one of those"
        )
    return args.backend


def load(args: argparse.Namespace) -> StageParams:
    """Validate params before any work starts (raises ConfigError with a one-line message),
    and hand the stage its slice: the keys the dvc.yaml beside its entry point declares."""
    params = load_params(args.params)
    declared = prov.stage_param_keys(args.repo, args.stage)
    if not declared:
        raise UsageError(
            f"{args.repo / 'dvc.yaml'} declares no params for stage '{args.stage}'; every "
            "stage lists the params keys it reads (and tracking.codecarbon_mode)"
        )
    return StageParams(params, args.stage, declared)


def stage_run(stage: str, params: StageParams, metrics: str):
    """tracking.stage.stage_run on the whole params (the run, its parent and ledger read
    tracking.*, experiment and train.backends): not reads of the stage's own code."""
    return tracking.stage_run(stage, whole(params), metrics)


@contextlib.contextmanager
def stage(args: argparse.Namespace) -> Iterator[tuple[tracking.StageRun, StageParams]]:
    """The params and the tracking context of a stage: what every entry point opens with."""
    params = load(args)
    with stage_run(args.stage, params, args.metrics) as run:
        yield run, params


@contextlib.contextmanager
def backend_stage(
    args: argparse.Namespace,
) -> Iterator[tuple[tracking.StageRun, StageParams, Backend]]:
    """The same for a per-framework stage (`<stage>@<backend>`); its framework is imported
    before the energy span starts, as a stage's set-up."""
    params = load(args)
    backend = get_backend(backend_of(args, params))
    with stage_run(f"{args.stage}@{backend.name}", params, args.metrics) as run:
        yield run, params, backend


def main_of(fn: Callable[[list[str] | None], int | None]) -> None:
    """Run a stage's main() behind the one-line error boundary, its outputs confined to the
    working directory (the repo under DVC)."""
    with artifacts.outputs_inside(Path.cwd()):
        run_main(fn)
