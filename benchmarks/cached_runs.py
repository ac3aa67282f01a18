"""Cached runs: `dvc repro` and `greenpipe run` when every stage is already up to date.

Runs the default experiment once in a scratch copy of the repo, then times each command three
times with nothing to do. Targets: dvc repro < 3 s, greenpipe run < 15 s.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import workspace  # noqa: E402

SMALL = {"train.epochs": 3, "distill.epochs": 3, "evaluate.energy_inferences": 1000}


def timed(ws: Path, *cmd: str) -> float:
    t0 = time.perf_counter()
    workspace.run(ws, *cmd)
    return time.perf_counter() - t0


def main() -> None:
    ws = workspace.make(SMALL)
    workspace.run(ws, "dvc", "repro")
    rows = []
    for cmd, target in ((("dvc", "repro"), 3.0), (("greenpipe", "run"), 15.0)):
        times = [timed(ws, *cmd) for _ in range(3)]
        rows.append((" ".join(cmd), statistics.median(times), min(times), target))
    print(f"{'fully cached':<22}{'median s':>10}{'min s':>8}{'target s':>10}")
    for label, med, low, target in rows:
        print(f"{label:<22}{med:>10.2f}{low:>8.2f}{target:>10.1f}")


if __name__ == "__main__":
    main()
