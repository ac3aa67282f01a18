"""The stages of dvc.yaml called in order in this one Python process, with neither Prefect,
DVC, MLflow nor CodeCarbon: the baseline of benchmarks/overhead.py.

Usage: python benchmarks/bare_pipeline.py STAGES.json  (run inside a workspace)
STAGES.json lists [stage name, [script, args...]] in order (the dvc.yaml commands, which the
caller resolves through DVC). Prints {"stage": seconds, ...} as JSON on the last line.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import time
from pathlib import Path

os.environ["GREENPIPE_TRACKING"] = "off"  # stage_run: no MLflow run, no CodeCarbon tracker


def _main_of(script: str):
    spec = importlib.util.spec_from_file_location(Path(script).stem, script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def main() -> None:
    stages = json.loads(Path(sys.argv[1]).read_text())
    times = {}
    for stage, (script, *args) in stages:
        t0 = time.perf_counter()
        _main_of(script)(args)
        times[stage] = time.perf_counter() - t0
        print(f"{stage}: {times[stage]:.1f} s", file=sys.stderr)
    print(json.dumps(times))


if __name__ == "__main__":
    main()
