"""The `greenpipe` command: run the experiment flow, validate params, list stages."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path

from greenpipe.config import load_params
from greenpipe.errors import UsageError, run_main


def _quiet_defaults() -> None:
    for key, value in {
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "DVC_NO_ANALYTICS": "1",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "1",
    }.items():
        os.environ.setdefault(key, value)


def _load_flows(root: Path, module: str):
    """Import flows/<module>.py from the repo (flows/ is the repo's, not the package's)."""
    if not (root / "flows" / f"{module}.py").is_file():
        raise UsageError(
            f"no flows/{module}.py under '{root}'; run greenpipe from the repo root or pass --root"
        )
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    return importlib.import_module(f"flows.{module}")


def cmd_run(args: argparse.Namespace) -> int:
    root = Path(args.root).resolve()
    load_params(root / "params.yaml")  # a bad key fails here, before anything runs
    from greenpipe.graph import stage_order

    order = stage_order(root)
    print(f"greenpipe: {len(order)} stages: {' -> '.join(order)}", file=sys.stderr)
    flows = _load_flows(root, "experiment")
    outcome = flows.experiment(root=str(root), force=args.force)
    ran = [s for s, st in outcome.items() if st != "Cached"]
    print(
        f"greenpipe: done; ran {len(ran)} stage(s), {len(outcome) - len(ran)} cached",
        file=sys.stderr,
    )
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    params = load_params(Path(args.root) / "params.yaml")
    print(f"params.yaml is valid (experiment '{params.experiment}', seed {params.seed})")
    return 0


def cmd_stages(args: argparse.Namespace) -> int:
    from greenpipe.graph import stage_order

    for name in stage_order(Path(args.root).resolve()):
        print(name)
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="greenpipe", description=__doc__)
    p.add_argument("--root", default=".", help="the greenpipe repo (default: .)")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="run the experiment flow (Prefect -> DVC -> stages)")
    r.add_argument("--force", action="store_true", help="re-run stages even if up to date")
    r.set_defaults(fn=cmd_run)
    sub.add_parser("validate", help="check params.yaml and exit").set_defaults(fn=cmd_validate)
    sub.add_parser("stages", help="list the stages in graph order").set_defaults(fn=cmd_stages)
    return p


def main(argv: list[str] | None = None) -> None:
    _quiet_defaults()

    def _main(a: list[str] | None) -> int:
        args = build_parser().parse_args(a)
        return args.fn(args)

    run_main(_main, argv)
