"""Shared plumbing for the pipelines/ entry points: arguments, config, the error boundary."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from pathlib import Path

from greenpipe import artifacts
from greenpipe.config import Params, load_params
from greenpipe.errors import UsageError, run_main

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TORCH_CPP_LOG_LEVEL", "ERROR")


def stage_parser(stage: str, description: str) -> argparse.ArgumentParser:
    """An argument parser with the options every stage takes (--params, --metrics)."""
    p = argparse.ArgumentParser(prog=f"pipelines/{stage}.py", description=description)
    p.add_argument("--params", default="params.yaml", help="params file (default params.yaml)")
    p.add_argument("--metrics", default=f"metrics/{stage}.json", help="metrics JSON for DVC")
    return p


def backend_parser(stage: str, description: str) -> argparse.ArgumentParser:
    """A stage parser for the per-framework stages (dvc.yaml foreach over train.backends)."""
    p = stage_parser(stage, description)
    p.add_argument("--backend", required=True, help="framework: one of train.backends")
    return p


def backend_of(args: argparse.Namespace, params: Params) -> str:
    """The --backend argument, checked against train.backends (a usage error otherwise)."""
    if args.backend not in params.train.backends:
        raise UsageError(
            f"--backend {args.backend!r} is not in train.backends "
            f"{list(params.train.backends)}; add it there or pick one of those"
        )
    return args.backend


def load(args: argparse.Namespace) -> Params:
    """Validate params before any work starts (raises ConfigError with a one-line message)."""
    return load_params(args.params)


def main_of(fn: Callable[[list[str] | None], int | None]) -> None:
    """Run a stage's main() behind the one-line error boundary, its outputs confined to the
    working directory (the repo under DVC)."""
    with artifacts.outputs_inside(Path.cwd()):
        run_main(fn)
