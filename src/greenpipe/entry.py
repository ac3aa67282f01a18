"""Shared plumbing for the pipelines/ entry points: arguments, config, the error boundary."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable

from greenpipe.config import Params, load_params
from greenpipe.errors import run_main

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def stage_parser(stage: str, description: str) -> argparse.ArgumentParser:
    """An argument parser with the options every stage takes (--params, --metrics)."""
    p = argparse.ArgumentParser(prog=f"pipelines/{stage}.py", description=description)
    p.add_argument("--params", default="params.yaml", help="params file (default params.yaml)")
    p.add_argument("--metrics", default=f"metrics/{stage}.json", help="metrics JSON for DVC")
    return p


def load(args: argparse.Namespace) -> Params:
    """Validate params before any work starts (raises ConfigError with a one-line message)."""
    return load_params(args.params)


def main_of(fn: Callable[[list[str] | None], int | None]) -> None:
    """Run a stage's main() behind the one-line error boundary."""
    run_main(fn)
