"""Orchestration and tracking overhead, cached runs and peak memory per stage.

1. The default experiment through `greenpipe run` (Prefect -> `dvc repro` per stage ->
   MLflow run and CodeCarbon tracker per stage) against the same stage functions called in
   order in one bare Python process (benchmarks/bare_pipeline.py: no Prefect, DVC, MLflow or
   CodeCarbon), each in a fresh copy of the repo. Per stage: greenpipe's wall time (from the
   flow's log), the bare time, the difference, and the part of it that a fresh interpreter
   importing the stage's framework costs by itself (`python -c "import torch"`, measured
   here), which the bare process pays only once; what remains is greenpipe's own fixed cost.
   A stage that a stage server forked (greenpipe.flows.stage_server: its record holds
   resources.preloaded_rss_mb) imported nothing per stage, so nothing is subtracted for it.
2. Cached runs: `dvc repro` and `greenpipe run` in the finished workspace, nothing to do.
3. Peak resident memory of each stage (the stage process's high-water mark, from its
   metrics file).

4. The same experiment under plain `dvc repro` (one DVC process runs every stage; each stage
   still opens its own MLflow run and CodeCarbon tracker), in a third copy: its mean fixed
   cost per stage is (dvc repro - bare - every stage's framework import) / stages. Skipped
   with --plan (a long workload would take a third run).

Each copy has its own Inductor cache, so each side compiles its AOTInductor models cold.
Every run shares one Prefect home whose database was created before the first timed run
(workspace.prefect_home): a machine that has run Prefect before, as a user's ~/.prefect is.
The stage servers preload what this machine's earlier runs learned that their stages import
lazily (~/.cache/greenpipe/stage-imports, as for a user's second run); the first
`greenpipe run` on a machine learns it. Each greenpipe run's line says whether it was there.

--rounds N (default 2) runs N pairs in ABBA order (greenpipe, bare, bare, greenpipe, ...),
each in a fresh copy, and compares the sums: this machine's speed drifts by up to 10% over
the minutes of a long workload, and a single pair carries that drift into the ratio. Per stage
figures are means over the rounds; --rounds 1 is one pair. It prints each round's ratio,
their median, and how far apart the same arm's runs were (this machine's noise).

Targets (issue 17): fixed cost per stage beyond interpreter and framework import <= 1.0 s on
average under greenpipe run and <= 2.0 s under plain dvc repro; end to end <= 1.25x the bare
process on the default experiment and <= 1.05x on plans/realistic.yaml; cached dvc repro and
greenpipe run < 3 s. Prints JSON result rows on the last line for benchmarks/run_all.py.
"""

from __future__ import annotations

import json
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple

sys.path.insert(0, str(Path(__file__).resolve().parent))
import workspace  # noqa: E402

# the default experiment as params.yaml has it (no overrides): about 2.5 minutes of compute;
# --plan PLAN (one variant) measures that workload instead, e.g. plans/realistic.yaml
PARAMS: dict = {}
IMPORTS = {"torch": "import torch", "tensorflow": "import tensorflow", "": "import numpy"}


def stage_commands(ws: Path) -> list[tuple[str, list[str]]]:
    """[(stage, [script, args...])] in DVC's order, from the resolved dvc.yaml commands."""
    code = (
        "import json, shlex, networkx as nx; from dvc.repo import Repo\n"
        "r = Repo('.'); g = r.index.graph\n"
        "st = [s for s in reversed(list(nx.topological_sort(g))) if s.cmd]\n"
        "print(json.dumps([(s.addressing, shlex.split(s.cmd)[1:]) for s in st]))"
    )
    out = workspace.run(ws, sys.executable, "-c", code).stdout
    return json.loads(out.strip().splitlines()[-1])


def import_cost(framework: str, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", IMPORTS[framework]], check=True, env=workspace.env())
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def spans(ws: Path) -> dict[str, float]:
    """{stage: the s its CodeCarbon span measured}: the stage's own work, from its record."""
    metrics = workspace.stage_metrics(ws).items()
    spans = {s: (m.get("energy") or {}).get("duration_s") for s, m in metrics}
    return {s: v for s, v in spans.items() if v is not None}


def served(ws: Path) -> set[str]:
    """The stages that ran as forks of a stage server (their framework was imported once,
    before the first stage, as in the bare process), from their records."""
    metrics = workspace.stage_metrics(ws).items()
    return {s for s, m in metrics if "preloaded_rss_mb" in (m.get("resources") or {})}


def peak_memory(ws: Path) -> dict[str, float]:
    metrics = workspace.stage_metrics(ws).items()
    peaks = {s: (m.get("resources") or {}).get("peak_rss_mb") for s, m in metrics}
    return {s: v for s, v in peaks.items() if v is not None}


def recorded(ws: Path) -> tuple[int, int, float]:
    """(child runs of the last parent with an energy figure and its sources, stages in
    dvc.lock, s that `greenpipe flush` waited for the background logger): nothing lost."""
    wait, _ = timed(ws, "greenpipe", "flush")
    code = (
        "import json, yaml; from mlflow.tracking import MlflowClient\n"
        "c = MlflowClient('sqlite:///mlflow.db')\n"
        "e = c.get_experiment_by_name(yaml.safe_load(open('params.yaml'))['experiment'])\n"
        "rs = c.search_runs([e.experiment_id], max_results=1000)\n"
        "p = max((r for r in rs if 'mlflow.parentRunId' not in r.data.tags),"
        " key=lambda r: r.info.start_time)\n"
        "kids = [r for r in rs if r.data.tags.get('mlflow.parentRunId') == p.info.run_id]\n"
        "ok = [r for r in kids if 'energy_j' in r.data.metrics"
        " and 'energy.source.cpu' in r.data.tags]\n"
        "print(json.dumps([len(ok), len(yaml.safe_load(open('dvc.lock'))['stages'])]))"
    )
    out = workspace.run(ws, sys.executable, "-c", code).stdout
    ok, stages = json.loads(out.strip().splitlines()[-1])
    return ok, stages, wait


def timed(ws: Path, *cmd: str) -> tuple[float, str]:
    # the shared Prefect home's database is created before the clock starts, not inside the
    # first timed run (the first `greenpipe run` read 30-35 s longer to its first stage)
    workspace.prefect_home()
    t0 = time.perf_counter()
    proc = workspace.run(ws, *cmd)
    return time.perf_counter() - t0, proc.stderr + proc.stdout


def cpu_ticks() -> tuple[int, int]:
    """(steal, all) CPU ticks since boot, from /proc/stat's cpu line; (0, 0) off Linux."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except OSError:
        return 0, 0
    # user nice system idle iowait irq softirq steal [guest guest_nice, counted in user]
    return fields[7], sum(fields[:8])


def steal_share(before: tuple[int, int], after: tuple[int, int]) -> float:
    """The share of this machine's CPU time that the host took (steal) between two
    cpu_ticks() readings: a virtual machine's noise that no process here can see."""
    total = after[1] - before[1]
    return (after[0] - before[0]) / total if total > 0 else 0.0


def parse(argv: list[str]):
    import argparse

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--plan", help="a plan with one variant: the workload to measure")
    p.add_argument(
        "--rounds",
        type=int,
        default=2,
        help="pairs of greenpipe run and bare process, in ABBA order (default 2: greenpipe, "
        "bare, bare, greenpipe): the sums cancel a steady drift of the machine's speed",
    )
    args = p.parse_args(argv)
    if args.rounds < 1:
        p.error(f"--rounds {args.rounds}: give 1 or more")
    return args


def abba(rounds: int) -> list[str]:
    """The order of the runs: greenpipe, bare | bare, greenpipe | greenpipe, bare | ..."""
    pair = ("greenpipe", "bare")
    return [arm for i in range(rounds) for arm in (pair if i % 2 == 0 else pair[::-1])]


class Run(NamedTuple):
    ws: Path  # the workspace it ran in
    wall: float  # s, end to end
    per_stage: dict[str, float]  # s per stage
    log: str  # greenpipe run's output ("" for the bare process)
    commands: list  # the stages' commands in order (the bare process's; [] for greenpipe)


def learned_before() -> str:
    """Which stage servers had a learned list of their stages' lazy imports (stage_server)."""
    from greenpipe.flows.stage_server import learned_file

    have = [k for k in ("base", "torch", "tensorflow") if learned_file(k).exists()]
    return ", ".join(have) if have else "none (this run learns them)"


def first_stage_after(log: str, started: float) -> float | None:
    """Seconds from the command's start (`started`, time.time()) until its first stage began:
    the first "stage X ran in S s" line's local time of day, less S."""
    m = re.search(r"^(\d\d):(\d\d):(\d\d\.\d+) .*stage \S+ ran in ([\d.]+) s", log, re.M)
    if not m:
        return None
    t = time.localtime(started)
    day = started - (t.tm_hour * 3600 + t.tm_min * 60 + t.tm_sec + started % 1)
    ended = day + int(m[1]) * 3600 + int(m[2]) * 60 + float(m[3])
    return (ended - float(m[4]) - started) % 86400  # a run across midnight


def run_greenpipe(params: dict) -> Run:
    print(f"greenpipe run: stage imports learned before it: {learned_before()}", flush=True)
    ws = workspace.make(params)
    started = time.time()
    wall, log = timed(ws, "greenpipe", "run")
    per_stage = {m[0]: float(m[1]) for m in re.findall(r"stage (\S+) ran in ([\d.]+) s", log)}
    first = first_stage_after(log, started)
    if first is not None:
        print(f"greenpipe run: its first stage began {first:.1f} s after the command started")
    return Run(ws, wall, per_stage, log, [])


def run_bare(params: dict) -> Run:
    ws = workspace.make(params)
    spec = ws / "stages.json"
    commands = stage_commands(ws)
    spec.write_text(json.dumps(commands))
    script = str(Path(__file__).resolve().parent / "bare_pipeline.py")
    wall, out = timed(ws, sys.executable, script, str(spec))
    return Run(ws, wall, json.loads(out.strip().splitlines()[-1]), "", commands)


def spread(walls: list[float]) -> float:
    """How far apart runs of the same work are: slowest / fastest - 1."""
    return max(walls) / min(walls) - 1


def mean_of(dicts: list[dict[str, float]]) -> dict[str, float]:
    keys = set.intersection(*(set(d) for d in dicts))
    return {k: statistics.fmean(d[k] for d in dicts) for k in keys}


def main(argv: list[str] | None = None) -> None:
    args = parse(sys.argv[1:] if argv is None else argv)
    params = workspace.plan_overrides(args.plan) if args.plan else PARAMS
    runs: dict[str, list[Run]] = {"greenpipe": [], "bare": []}
    for arm in abba(args.rounds):
        before = cpu_ticks()
        runs[arm].append(run_greenpipe(params) if arm == "greenpipe" else run_bare(params))
        print(
            f"{arm} run {len(runs[arm])}: {runs[arm][-1].wall:.1f} s (CPU taken by the host: "
            f"{100 * steal_share(before, cpu_ticks()):.1f}%)",
            flush=True,
        )
    # per stage: the mean over the rounds; the workspace of greenpipe's last run for records
    tracked, log = runs["greenpipe"][-1].ws, runs["greenpipe"][-1].log
    wall_g = sum(r.wall for r in runs["greenpipe"]) / args.rounds
    wall_b = sum(r.wall for r in runs["bare"]) / args.rounds
    per_stage_g = mean_of([r.per_stage for r in runs["greenpipe"]])
    per_stage_b = mean_of([r.per_stage for r in runs["bare"]])
    commands = runs["bare"][0].commands

    dvc_wall = None
    if not params:  # the default experiment: plain dvc repro too
        dvc_ws = workspace.make(params)
        dvc_wall = timed(dvc_ws, "dvc", "repro")[0]
        dvc_runs = recorded(dvc_ws)
    flow_runs = recorded(tracked)

    imports = {fw: import_cost(fw) for fw in IMPORTS}
    memory = peak_memory(tracked)
    print(
        f"{'stage':<20}{'greenpipe s':>12}{'bare s':>9}{'diff s':>9}{'import s':>10}"
        f"{'fixed s':>9}{'outside s':>10}{'peak MiB':>10}"
    )
    # outside s: the stage's wall time less its own measured span and its framework import,
    # which the work's run-to-run spread (the evaluate stages' timed loops) does not reach
    work = mean_of([spans(r.ws) for r in runs["greenpipe"]])
    forked = set.intersection(*(served(r.ws) for r in runs["greenpipe"]))
    fixed, outside = [], []
    for stage, _ in commands:
        g, b = per_stage_g.get(stage), per_stage_b.get(stage)
        # a served stage imported nothing per stage: its server did, once, before the first
        # stage (in "the flow outside the stages"), as the bare process does
        imported = 0.0 if stage in forked else imports[stage.partition("@")[2]]
        if g is None or b is None:
            print(f"{stage:<20}  (not timed)")
            continue
        beyond = g - b - imported
        fixed.append(beyond)
        out = g - work.get(stage, float("nan")) - imported
        outside.append(out)
        print(
            f"{stage:<20}{g:>12.1f}{b:>9.1f}{g - b:>9.1f}{imported:>10.1f}{beyond:>9.1f}"
            f"{out:>10.1f}{memory.get(stage, float('nan')):>10.0f}"
        )
    ready = re.search(r"stage servers (.+) ready ([\d.]+) s after they started(.*)", log)
    if ready:
        beside = "Prefect's start" if "before Prefect" in ready[3] else "MLflow's opening"
        print(
            f"stage servers ({ready[1]}): served {len(forked)} of {len(commands)} stages, "
            f"ready {float(ready[2]):.1f} s after they started (beside {beside})"
        )
    flow_cost = wall_g - sum(per_stage_g.values())
    ratio = wall_g / wall_b
    if args.rounds > 1:
        pairs = [g.wall / b.wall for g, b in zip(runs["greenpipe"], runs["bare"], strict=True)]
        print(
            f"{args.rounds} rounds in ABBA order, greenpipe run / bare process per round: "
            + ", ".join(f"{r:.3f}" for r in pairs)
            + f"; median {statistics.median(pairs):.3f}; of the sums: {ratio:.3f}"
        )
        # the same work run twice: how far apart this machine puts two runs of one arm
        print(
            "run-to-run spread of the same arm (slowest / fastest - 1): bare process "
            f"{100 * spread([r.wall for r in runs['bare']]):.1f}%, greenpipe run "
            f"{100 * spread([r.wall for r in runs['greenpipe']]):.1f}%"
        )
    # what greenpipe itself adds, measured directly: the flow outside the stages and each
    # stage's time outside its own span; unlike the end-to-end ratio it does not carry the
    # drift of the machine's speed between the two runs (+-10% over a long workload here)
    own = (wall_b + flow_cost + sum(outside)) / wall_b
    print(
        f"end to end (mean of {args.rounds}): greenpipe run {wall_g:.1f} s, bare process "
        f"{wall_b:.1f} s, "
        f"ratio {ratio:.3f} (overhead {100 * (ratio - 1):.1f}%); flow outside stages "
        f"{flow_cost:.1f} s; (bare + flow outside + stages outside their spans) / bare "
        f"{own:.3f}"
    )
    dvc_fixed = None
    if dvc_wall is not None:
        n_imports = sum(imports[stage.partition("@")[2]] for stage, _ in commands)
        dvc_fixed = (dvc_wall - wall_b - n_imports) / len(commands)
        print(
            f"plain dvc repro {dvc_wall:.1f} s, ratio {dvc_wall / wall_b:.3f}; fixed cost per "
            f"stage beyond imports {dvc_fixed:.2f} s on average"
        )
    print(
        f"MLflow child runs with energy and sources: greenpipe run {flow_runs[0]} of "
        f"{flow_runs[1]} stages"
        + (
            f", plain dvc repro {dvc_runs[0]} of {dvc_runs[1]} (greenpipe flush then waited "
            f"{dvc_runs[2]:.1f} s, its own start included, for the background logger)"
            if dvc_wall is not None
            else ""
        )
    )
    print(
        "import s: a fresh interpreter importing the stage's framework ("
        + ", ".join(f"{k or 'numpy only'} {v:.1f} s" for k, v in imports.items())
        + ")"
    )

    cached = {}
    for cmd in (("dvc", "repro"), ("greenpipe", "run")):
        cached[" ".join(cmd)] = statistics.median(timed(tracked, *cmd)[0] for _ in range(3))
    print("fully cached: " + ", ".join(f"{k} {v:.2f} s" for k, v in cached.items()))

    e2e_target = 1.25 if not params else 1.05
    mean_fixed = statistics.fmean(fixed)
    rows = [
        ("end-to-end greenpipe run / bare process", ratio, f"<= {e2e_target}", ratio <= e2e_target),
        (
            "(bare + greenpipe's own time: flow outside stages, stages outside spans) / bare",
            own,
            f"<= {e2e_target}",
            own <= e2e_target,
        ),
        (
            "fixed cost per stage beyond imports, greenpipe run (mean s)",
            mean_fixed,
            "<= 1.0",
            mean_fixed <= 1.0,
        ),
        ("the same, max over the stages (s)", max(fixed), "-", None),
        (
            "greenpipe run: stage wall - its own span - framework import (mean s)",
            statistics.fmean(outside),
            "-",
            None,
        ),
    ]
    if dvc_fixed is not None:
        rows.append(
            (
                "fixed cost per stage beyond imports, dvc repro (mean s)",
                dvc_fixed,
                "<= 2.0",
                dvc_fixed <= 2.0,
            )
        )
    rows += [
        ("dvc repro, fully cached (s)", cached["dvc repro"], "< 3", cached["dvc repro"] < 3),
        (
            "greenpipe run, fully cached (s)",
            cached["greenpipe run"],
            "< 3",
            cached["greenpipe run"] < 3,
        ),
        ("peak stage memory (MiB, max over stages)", max(memory.values()), "-", None),
        (
            "share of stages with an MLflow run, energy and sources, greenpipe run",
            flow_runs[0] / flow_runs[1],
            "1",
            flow_runs[0] == flow_runs[1],
        ),
    ]
    if dvc_wall is not None:
        rows.append(
            (
                "share of stages with an MLflow run, energy and sources, dvc repro",
                dvc_runs[0] / dvc_runs[1],
                "1",
                dvc_runs[0] == dvc_runs[1],
            )
        )
    print(json.dumps({"rows": rows}))


if __name__ == "__main__":
    main()
