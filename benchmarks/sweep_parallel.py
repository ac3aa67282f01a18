"""Sweep speed-up: the same 4-variant sweep run one variant at a time, and on 2 Dask workers.

Both runs start from a workspace whose shared stages (data, teacher) are already in DVC's
run-cache, so both time the same work: 4 x (distill, optimize, evaluate, report).
Prints the wall times and their ratio (target: >= 1.5x on a 2-core machine).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import workspace  # noqa: E402

PLAN = """\
name: bench
grid:
  distill.temperature: [2.0, 4.0]
  distill.alpha: [0.5, 0.9]
"""
SMALL = {
    "train.backends": ["torch"],
    "train.epochs": 10,
    "distill.epochs": 20,
    "distill.patience": 20,
    "optimize.prune.fine_tune_epochs": 5,
    "evaluate.latency_runs": 50,
    "evaluate.energy_inferences": 5000,
    "evaluate.energy_repeats": 1,
    "evaluate.peak_memory": False,
    "evaluate.bootstrap_samples": 200,
}


def timed_sweep(workers: int) -> float:
    ws = workspace.make(SMALL)
    (ws / "plans" / "bench.yaml").write_text(PLAN)
    workspace.run(ws, "git", "add", "-A")
    workspace.run(ws, "git", "commit", "-qm", "plan")
    workspace.run(ws, "dvc", "repro", "train@torch")  # shared stages into the run-cache
    t0 = time.perf_counter()
    workspace.run(ws, "greenpipe", "sweep", "plans/bench.yaml", "--workers", str(workers))
    return time.perf_counter() - t0


def main() -> None:
    cores = os.cpu_count()
    serial = timed_sweep(1)
    parallel = timed_sweep(2)
    print(f"sweep of 4 variants on {cores} cores")
    print(f"{'mode':<36}{'wall s':>10}")
    print(f"{'one variant at a time (1 worker)':<36}{serial:>10.1f}")
    print(f"{'2 Dask workers, 1 thread each':<36}{parallel:>10.1f}")
    speedup = serial / parallel
    print(f"speed-up: {speedup:.2f}x (target >= 1.5x)")
    print(
        json.dumps({"rows": [("sweep speed-up, 2 workers / 1", speedup, ">= 1.5", speedup >= 1.5)]})
    )


if __name__ == "__main__":
    main()
