"""A stage served by a stage server against the same stage in a fresh interpreter, interleaved.

`greenpipe run` forks each stage from a stage server that has its imports loaded
(greenpipe.flows.stage_server). This checks that the fork costs nothing in the stage's own
work: the same dvc.yaml command (distill@torch by default: training, the bulk of a run) runs
alternately as DVC would start it (`bash -c CMD`, a fresh interpreter) and through the shim to
a server, N rounds each, in one fresh copy of the repo whose upstream stages DVC ran first.
Tracking is off in both (GREENPIPE_TRACKING=off), so only the start and the work differ.
Prints each round, the medians and served / fresh (< 1: the server saved the imports).

With --tracked a third arm runs the stage as `greenpipe run` does: served, with its MLflow
record and CodeCarbon tracker. Against the served untracked arm it tells whether tracking
slows the stage's own work (the tracker samples power every tracking.measure_power_secs,
1 s by default, in a thread), free of the
machine's drift between two long runs, which interleaving cancels.
--plan PLAN and --set KEY=VALUE size the workload (e.g. --plan plans/realistic.yaml
--set distill.epochs=3: the realistic stage, shorter).

Usage: python benchmarks/served_stage.py [--stage distill@torch] [--rounds 3] [--tracked]
       [--plan PLAN] [--set KEY=VALUE ...]
Prints JSON result rows on the last line for benchmarks/run_all.py.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import workspace  # noqa: E402

from greenpipe.flows.servers import StageServers  # noqa: E402


def command_of(ws: Path, stage: str) -> tuple[str, str]:
    code = (
        "import json, sys; from dvc.repo import Repo\n"
        "s = {s.name: s for s in Repo('.').index.stages}[sys.argv[1]]\n"
        "print(json.dumps([s.wdir, s.cmd]))"
    )
    out = workspace.run(ws, sys.executable, "-c", code, stage).stdout
    wdir, cmd = json.loads(out.strip().splitlines()[-1])
    return wdir, cmd


def workload_args(p: argparse.ArgumentParser) -> None:
    """The options that choose the stage and size its workload (shared by prefect_beside.py)."""
    p.add_argument("--stage", default="distill@torch")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--plan", help="a plan with one variant: the workload")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")


def prepared_stage(args: argparse.Namespace) -> tuple[Path, str, str, dict[str, str]]:
    """(workspace, the stage's wdir, its command, an untracked env): a fresh copy of the repo
    with the workload's overrides, whose upstream stages DVC has run."""
    overrides = workspace.plan_overrides(args.plan, args.set)
    overrides.setdefault("train.backends", [args.stage.partition("@")[2] or "torch"])
    ws = workspace.make(overrides)
    workspace.run(ws, "dvc", "repro", args.stage)  # its upstream stages, and itself once
    wdir, cmd = command_of(ws, args.stage)
    env = workspace.env() | {"GREENPIPE_TRACKING": "off", "PREFECT_HOME": str(ws / ".prefect")}
    env["TORCHINDUCTOR_CACHE_DIR"] = str(ws / ".inductor-cache")
    return ws, wdir, cmd, env


def rotated(arms: list[str], i: int) -> list[str]:
    """Round i's order of the arms: rotated so that no arm always runs first."""
    return arms[i % len(arms) :] + arms[: i % len(arms)]


def run_stage(cmd: str, wdir: str, env: dict[str, str]) -> float:
    """The stage's command as DVC runs it (`bash -c CMD`); its wall time in s."""
    t0 = time.perf_counter()
    subprocess.run(["bash", "-c", cmd], cwd=wdir, env=env, check=True, capture_output=True)
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    workload_args(p)
    p.add_argument("--tracked", action="store_true", help="a third arm: served and tracked")
    args = p.parse_args()
    ws, wdir, cmd, env = prepared_stage(args)
    times: dict[str, list[float]] = {"fresh": [], "served": []}
    spans: list[float] = []
    with StageServers({args.stage: (wdir, cmd)}, env) as servers:
        arms = {"fresh": env, "served": servers.stage_env(env)}
        if args.tracked:
            tracked = env | {"GREENPIPE_TRACKING": "on"}
            arms["tracked"] = servers.stage_env(tracked)
            times["tracked"] = []
        for i in range(args.rounds):
            for arm in rotated(list(arms), i):
                times[arm].append(run_stage(cmd, wdir, arms[arm]))
                extra = ""
                if arm == "tracked":
                    spans.append(workspace.stage_metrics(ws)[args.stage]["energy"]["duration_s"])
                    extra = f" (CodeCarbon span {spans[-1]:.1f} s)"
                print(f"round {i + 1} {arm:<7} {times[arm][-1]:.1f} s{extra}", flush=True)
    med = {a: statistics.median(t) for a, t in times.items()}
    ratio = med["served"] / med["fresh"]
    print(
        f"{args.stage}: fresh interpreter {med['fresh']:.1f} s, served {med['served']:.1f} s "
        f"(medians of {args.rounds}); served / fresh {ratio:.3f}"
    )
    rows = [
        (f"{args.stage}: served / fresh interpreter (wall, medians)", ratio, "<= 1.0", ratio <= 1.0)
    ]
    if args.tracked:
        # both served: only the MLflow record and the CodeCarbon tracker differ
        tracked_ratio = med["tracked"] / med["served"]
        print(
            f"{args.stage}: served and tracked {med['tracked']:.1f} s, its CodeCarbon span "
            f"{statistics.median(spans):.1f} s (medians); tracked / untracked (both served) "
            f"{tracked_ratio:.3f}"
        )
        rows.append(
            (f"{args.stage}: tracked / untracked, both served (wall)", tracked_ratio, "-", None)
        )
    print(json.dumps({"rows": rows}))


if __name__ == "__main__":
    main()
