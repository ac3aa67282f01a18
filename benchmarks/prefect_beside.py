"""A stage's own work alone, beside Prefect's temporary API server, and beside it at idle priority.

Under `greenpipe run` without PREFECT_API_URL, Prefect starts a temporary API server (uvicorn,
SubprocessASGIServer) that lives through the whole run. Idle, it still wakes over 100 times a
second (its Docket worker polls an in-memory Redis every 250 ms, from several threads), and
on a machine whose cores the stage's framework threads fill, each wake-up preempts one of
them: a framework's parallel op then waits at its barrier for the preempted thread.

This runs one stage (distill@torch by default, served, tracking off) alternately: alone, beside
an idle temporary server at normal priority, and beside one whose threads are SCHED_IDLE
(they run only when a core is free): whether the server's wake-ups cost the stage anything,
and whether idle priority would win it back. N rounds, the arm order rotated each round;
prints each round, the medians and the ratios against alone.

Usage: python benchmarks/prefect_beside.py [--stage distill@torch] [--rounds 3]
       [--plan PLAN] [--set KEY=VALUE ...]
Prints JSON result rows on the last line for benchmarks/run_all.py.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from served_stage import prepared_stage, rotated, run_stage, workload_args  # noqa: E402

from greenpipe.flows.servers import StageServers  # noqa: E402


def idle_priority(pid: int) -> int:
    """Every thread of PID to SCHED_IDLE: it runs only on a core that nothing else wants, and
    a wake-up of it never preempts a stage's thread. Linux only (the policy is per thread;
    threads created later inherit it). Returns the number of threads set."""
    if not hasattr(os, "SCHED_IDLE"):
        return 0
    n = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(ProcessLookupError):  # a thread that ended meanwhile
            os.sched_setscheduler(int(tid), os.SCHED_IDLE, os.sched_param(0))
            n += 1
    return n


SERVER = (
    "import os, sys, time\n"
    "from prefect.server.api.server import SubprocessASGIServer\n"
    "s = SubprocessASGIServer(); s.start()\n"
    "print(s.server_process.pid, flush=True)\n"
    "sys.stdin.read(); s.stop()\n"
)


@contextlib.contextmanager
def prefect_server(env: dict[str, str], idle: bool):
    """An idle temporary Prefect API server, started as the flow starts it."""
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=env,
        text=True,
    )
    try:
        pid = int(proc.stdout.readline())
        if idle:
            idle_priority(pid)
        time.sleep(5)  # past its start-up
        yield pid
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    workload_args(p)
    args = p.parse_args()
    _, wdir, cmd, env = prepared_stage(args)
    arms = {"alone": None, "beside": False, "beside_idle": True}
    times: dict[str, list[float]] = {a: [] for a in arms}
    with StageServers({args.stage: (wdir, cmd)}, env) as servers:
        stage_env = servers.stage_env(env)
        for i in range(args.rounds):
            for arm in rotated(list(arms), i):
                with contextlib.ExitStack() as stack:
                    if arms[arm] is not None:
                        stack.enter_context(prefect_server(env, idle=arms[arm]))
                    times[arm].append(run_stage(cmd, wdir, stage_env))
                print(f"round {i + 1} {arm:<12} {times[arm][-1]:.1f} s", flush=True)
    med = {a: statistics.median(t) for a, t in times.items()}
    beside, idle = med["beside"] / med["alone"], med["beside_idle"] / med["alone"]
    print(
        f"{args.stage}: alone {med['alone']:.1f} s, beside Prefect's temporary server "
        f"{med['beside']:.1f} s ({beside:.3f}), beside it at idle priority "
        f"{med['beside_idle']:.1f} s ({idle:.3f}) (medians of {args.rounds})"
    )
    rows = [
        (f"{args.stage}: beside Prefect's temporary server / alone (wall)", beside, "-", None),
        (f"{args.stage}: beside it at idle priority / alone", idle, "-", None),
    ]
    print(json.dumps({"rows": rows}))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
