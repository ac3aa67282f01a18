"""A stage served by a stage server against the same stage in a fresh interpreter, interleaved.

`greenpipe run` forks each stage from a stage server that has its imports loaded
(greenpipe.flows.stage_server). This checks that the fork costs nothing in the stage's own
work: the same dvc.yaml command (distill@torch by default: training, the bulk of a run) runs
alternately as DVC would start it (`bash -c CMD`, a fresh interpreter) and through the shim to
a server, N rounds each, in one fresh copy of the repo whose upstream stages DVC ran first.
Tracking is off in both (GREENPIPE_TRACKING=off), so only the start and the work differ.
Prints each round, the medians and served / fresh (< 1: the server saved the imports).

Usage: python benchmarks/served_stage.py [--stage distill@torch] [--rounds 3]
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


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--stage", default="distill@torch")
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    ws = workspace.make({"train.backends": [args.stage.partition("@")[2] or "torch"]})
    workspace.run(ws, "dvc", "repro", args.stage)  # its upstream stages, and itself once
    wdir, cmd = command_of(ws, args.stage)
    env = workspace.env() | {"GREENPIPE_TRACKING": "off", "PREFECT_HOME": str(ws / ".prefect")}
    env["TORCHINDUCTOR_CACHE_DIR"] = str(ws / ".inductor-cache")
    times: dict[str, list[float]] = {"fresh": [], "served": []}
    with StageServers({args.stage: (wdir, cmd)}, env) as servers:
        arms = {"fresh": env, "served": servers.stage_env(env)}
        for i in range(args.rounds):
            for arm, arm_env in arms.items():
                t0 = time.perf_counter()
                subprocess.run(
                    ["bash", "-c", cmd], cwd=wdir, env=arm_env, check=True, capture_output=True
                )
                times[arm].append(time.perf_counter() - t0)
                print(f"round {i + 1} {arm:<7} {times[arm][-1]:.1f} s", flush=True)
    fresh, served = (statistics.median(times[a]) for a in ("fresh", "served"))
    ratio = served / fresh
    print(
        f"{args.stage}: fresh interpreter {fresh:.1f} s, served {served:.1f} s (medians of "
        f"{args.rounds}); served / fresh {ratio:.3f}"
    )
    row = (
        f"{args.stage}: served / fresh interpreter (wall, medians)",
        ratio,
        "<= 1.0",
        ratio <= 1.0,
    )
    print(json.dumps({"rows": [row]}))


if __name__ == "__main__":
    main()
