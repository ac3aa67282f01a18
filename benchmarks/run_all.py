"""Run the benchmarks one after the other and print one table of every measured ratio.

Usage: python benchmarks/run_all.py [--sweep]   (`make bench`; --sweep adds the sweep
speed-up of issue 6, about 8 more minutes). Each benchmark prints its own detailed table,
then a JSON line of result rows that this script gathers.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHMARKS = [
    "train_throughput.py",
    "overhead.py",
    "served_stage.py",
    "growth.py",
    "runtimes.py",
    "precision.py",
]


def gpus(hw: dict) -> str:
    """The GPUs of provenance.hardware()'s record (gpu_count, gpu0_model, gpu1_model, ...):
    "NVIDIA H200", "2 x NVIDIA H200", "NVIDIA A100, NVIDIA T4", or "no GPU"."""
    models = [str(hw[f"gpu{i}_model"]) for i in range(int(hw.get("gpu_count") or 0))]
    if not models:
        return "no GPU"
    if len(set(models)) == 1 and len(models) > 1:
        return f"{len(models)} x {models[0]}"
    return ", ".join(models)


def machine() -> str:
    sys.path.insert(0, str(HERE.parent / "src"))
    from greenpipe.tracking.provenance import hardware

    hw = hardware()
    return (
        f"{hw['cpu_model']}, {hw['cpu_cores_logical']} cores, {hw['ram_gib']:.0f} GiB RAM, "
        f"{gpus(hw)}, Python {platform.python_version()}"
    )


def main() -> int:
    names = BENCHMARKS + (["sweep_parallel.py"] if "--sweep" in sys.argv else [])
    rows, t_all = [], time.perf_counter()
    for name in names:
        print(f"== {name}", flush=True)
        t0 = time.perf_counter()
        # progress bars and framework logs go to a file, shown only if the benchmark fails
        with tempfile.TemporaryFile("w+") as log:
            proc = subprocess.Popen(
                [sys.executable, str(HERE / name)],
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
            )
            last = ""
            for line in proc.stdout:
                if line.startswith('{"rows"'):
                    last = line
                else:
                    print(line, end="", flush=True)
            if proc.wait() != 0 or not last:
                log.seek(0)
                print(log.read()[-5000:], file=sys.stderr)
                print(f"{name} failed (exit {proc.returncode})", file=sys.stderr)
                return 1
        rows += [(name, *r) for r in json.loads(last)["rows"]]
        print(f"   ({time.perf_counter() - t0:.0f} s)\n", flush=True)
    print(f"Summary ({machine()}; all benchmarks {time.perf_counter() - t_all:.0f} s)")
    print(f"| {'benchmark':<20} | {'measure':<62} | {'value':>8} | {'target':<8} | met |")
    print(f"|{'-' * 22}|{'-' * 64}|{'-' * 10}|{'-' * 10}|-----|")
    for name, label, value, target, ok in rows:
        met = "-" if ok is None else ("yes" if ok else "no")
        print(f"| {name:<20} | {label:<62} | {value:>8.3f} | {target:<8} | {met:<3} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
