"""The `greenpipe` command: run the experiment flow, validate params, list stages, report."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path

from greenpipe.config import load_params
from greenpipe.errors import GreenpipeError, UsageError, run_main


def _quiet_defaults() -> None:
    """Offline switches, and settings the user may override by setting them."""
    for key, value in {
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "DVC_NO_ANALYTICS": "1",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "1",
        # Prefect gives its temporary API server 20 s to answer. On a machine's first run it
        # creates its database first (Prefect's migrations): 12-14 s on an idle 2-core box
        # here, over 20 s on a busy one, and the run failed before any stage
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
    }.items():
        os.environ.setdefault(key, value)


def _load_flows(module: str):
    """greenpipe.flows.<module>, imported only here: the rest of greenpipe has no Prefect."""
    return importlib.import_module(f"greenpipe.flows.{module}")


def cmd_run(args: argparse.Namespace) -> int:
    root = Path(args.root).resolve()
    params = load_params(root / "params.yaml")  # a bad key fails here, before anything runs
    check_data(params.data, root)
    from greenpipe.graph import stage_plan

    graph, runnable = stage_plan(root, args.force)
    print(f"greenpipe: {len(graph)} stages: {' -> '.join(graph)}", file=sys.stderr)
    if not runnable:
        # like `dvc repro`: nothing to run, so no flow run and no MLflow run either
        print(
            "greenpipe: every stage is up to date in dvc.lock; nothing to run "
            "(--force re-runs them all)",
            file=sys.stderr,
        )
        print_results(root, params)
        return 0
    measure_idle(params.tracking)  # before anything starts: the window must be quiet
    from greenpipe.flows import servers

    # the stage servers' imports overlap Prefect's import and its temporary server's start
    with servers.start_early(runnable):
        outcome = _load_flows("experiment").experiment(root=str(root), force=args.force)
    states = list(outcome.values())
    ran = len(states) - states.count("Cached") - states.count("Restored")
    print(
        f"greenpipe: done; ran {ran} stage(s), {states.count('Cached')} up to date, "
        f"{states.count('Restored')} restored from DVC's run-cache (their figures are "
        "inherited, not spent)",
        file=sys.stderr,
    )
    print_results(root, params)
    return 0


def check_data(data, root: Path) -> None:
    """data.path exists and has the shape data.source needs, before any flow starts."""
    from greenpipe.data.sources import check_source

    check_source(data.source, data.path, root)


def print_results(root: Path, params) -> None:
    """The end of a run: each model's accuracy and energy, and where to look next."""
    import yaml

    from greenpipe.report import summary

    # the one-row-per-model table is the file dvc.yaml's scatter plots draw
    spec = yaml.safe_load((root / "dvc.yaml").read_text()) or {}
    plots = [s for p in spec.get("plots") or [] for s in p.values() if isinstance(s, dict)]
    tables = [f for s in plots if s.get("template") == "scatter" for f in s.get("y") or {}]
    rows = summary.read_models_csv(root / tables[0]) if tables else []
    if rows:
        print(summary.model_table(rows))
    print(
        "next: reports/report.html (findings, tables, plots) | dvc metrics show | "
        "make compare (dvc exp show) | make prefect-ui"
    )
    print(f"MLflow runs table (make mlflow-ui): {mlflow_link(root, params)}")


def mlflow_link(root: Path, params) -> str:
    """The experiment's runs table in the MLflow UI, or how to find it; without opening
    MLflow when the store's id for the experiment is remembered (tracking.known)."""
    from greenpipe.tracking import known, runs

    uri = runs.resolve_tracking_uri(params.tracking.mlflow_uri, root)
    exp_id = known.recall(root, uri, params.experiment)
    if exp_id is not None:
        return runs.experiment_url(uri, exp_id)
    client, uri = runs.open_client(params.tracking, root)
    exp = client.get_experiment_by_name(params.experiment)
    if exp is None:
        return f"{runs.ui_base(uri)} (no experiment '{params.experiment}' yet)"
    return runs.experiment_url(uri, exp.experiment_id)


def measure_idle(tr, mode: str | None = None) -> None:
    """The idle baseline of this host and mode, measured now unless a recent one is cached."""
    from greenpipe.tracking import idle

    mode = mode or tr.codecarbon_mode
    if os.environ.get("GREENPIPE_TRACKING", "on") == "off":
        return
    if idle.load_cached(mode, tr.idle_max_age_s) is None:
        print(f"greenpipe: measuring idle power for {tr.idle_seconds:g} s", file=sys.stderr)
    base = idle.baseline_for(tr, mode)
    print(
        f"greenpipe: idle power {base.power_w:.2f} W (cpu {base.cpu_power_w:.2f} "
        f"± {base.cpu_power_std_w:.2f}, ram {base.ram_power_w:.2f}, gpu {base.gpu_power_w:.2f}; "
        f"{mode} mode, {base.window_s:.1f} s window)",
        file=sys.stderr,
    )


def cmd_validate(args: argparse.Namespace) -> int:
    params = load_params(Path(args.root) / "params.yaml")
    print(f"params.yaml is valid (experiment '{params.experiment}', seed {params.seed})")
    return 0


def cmd_stages(args: argparse.Namespace) -> int:
    from greenpipe.graph import stage_order

    for name in stage_order(Path(args.root).resolve()):
        print(name)
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from greenpipe.flows.verify import verify
    from greenpipe.graph import stage_order
    from greenpipe.verify import spread_rows

    root = Path(args.root).resolve()
    load_params(root / "params.yaml")
    order = stage_order(root)
    unknown = [s for s in args.stages if s not in order]
    if unknown or args.repeats < 1:
        raise UsageError(
            f"unknown stage(s) {unknown}; choose from {order}"
            if unknown
            else "--repeats must be >= 1"
        )
    stages = [s for s in order if s in args.stages] if args.stages else order
    print(f"greenpipe verify: re-running {', '.join(stages)} x{args.repeats}", file=sys.stderr)
    verdict = verify(root, stages, args.repeats, args.keep)
    rows = spread_rows(verdict.spread)
    if rows:
        print(f"{'measurement (recorded + re-runs)':<70} {'mean':>12} {'stdev':>12} {'rel':>7}")
        for key, mean, sd, rel in rows:
            print(f"{key[:70]:<70} {mean:>12.4g} {sd:>12.4g} {rel:>7.1%}")
    for stage, mode in verdict.determinism.items():  # the recorded run's kernels
        print(f"determinism of {stage}: {mode}")
    print(f"checked {len(verdict.checked)} outputs and metrics files")
    if not verdict.ok:
        for line in verdict.mismatches:
            print(f"MISMATCH {line}")
        raise GreenpipeError(
            f"{len(verdict.mismatches)} mismatch(es); first: {verdict.mismatches[0]}"
        )
    print("verified: outputs and result metrics are identical to the recorded ones")
    return 0


def flush_records(root: Path) -> int:
    """Log the stage run records not yet in MLflow (waiting for a detached logger that is
    logging them); how many this process logged."""
    from greenpipe.tracking import recorder, records

    return len(recorder.flush(records.folder(root, {})))


def cmd_flush(args: argparse.Namespace) -> int:
    n = flush_records(Path(args.root).resolve())
    print(f"greenpipe: every stage run record is in MLflow ({n} logged now)", file=sys.stderr)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    root = Path(args.root).resolve()
    flush_records(root)  # right after `dvc repro`, its last records may still be on their way
    report(root, args.out, args.energy, args.experiment, not args.no_tag, args.sweep)
    return 0


def report(
    root: Path,
    out: str,
    energy: str,
    experiment: str | None = None,
    tag: bool = True,
    sweep: str | None = None,
) -> None:
    """The cross-run report over the finished runs of `experiment` (default: params.yaml's),
    only those of `sweep` if given, written to the repo folder `out`; the runs tagged with the
    Pareto front unless `tag` is false."""
    from greenpipe import artifacts
    from greenpipe.backends.registry import available_backends
    from greenpipe.report import crossrun, mlflow_runs
    from greenpipe.report.units import si
    from greenpipe.tracking import runs

    folder = report_folder(root, out)  # before anything is read or written
    params = load_params(root / "params.yaml")
    experiment = experiment or params.experiment
    client, uri = runs.open_client(params.tracking, root)  # reads only: creates no experiment
    total = params.report.total_inferences
    points = mlflow_runs.collect(client, experiment, available_backends(), total, sweep)
    if not points:
        which = f"of sweep '{sweep}' " if sweep else ""
        raise GreenpipeError(
            f"no finished run {which}with evaluated models in MLflow experiment '{experiment}' "
            f"({uri}); run the pipeline first (dvc repro)"
        )
    points = crossrun.with_front(points, energy)
    title = f"{params.report.title}: all runs of '{experiment}'"
    for name, content in crossrun.build(points, energy, title).items():
        write = artifacts.write_bytes if isinstance(content, bytes) else artifacts.write_text
        write(folder / name, content)
    if tag:
        mlflow_runs.tag_pareto(client, points, [p["pareto"] for p in points], energy)
    for p in (p for p in points if p["pareto"]):
        print(
            f"pareto: {p['model']}@{p['backend']} seed {p['seed']} run '{p['run_name']}': "
            f"accuracy {p['accuracy']:.4f}, {energy} energy {si(p['energy_j'], 'J')}"
        )
    print(f"greenpipe report: {len(points)} points; wrote {folder / 'index.html'}", file=sys.stderr)


def report_folder(root: Path, out: str) -> Path:
    """--out as a folder inside the repo (symlinks resolved); a usage error otherwise."""
    folder = (root / out).resolve()
    if not folder.is_relative_to(root):
        raise UsageError(
            f"--out '{out}' is outside the repo {root}; give a folder inside it "
            "(default reports/pareto)"
        )
    return folder


def cmd_sweep(args: argparse.Namespace) -> int:
    import yaml

    from greenpipe.config import validate_params
    from greenpipe.sweep import apply, load_plan

    root = Path(args.root).resolve()
    params = load_params(root / "params.yaml")
    if args.workers < 1:
        raise UsageError("--workers must be >= 1")
    plan = Path(args.plan) if Path(args.plan).is_absolute() else root / args.plan
    raw = yaml.safe_load((root / "params.yaml").read_text())
    _, variants = load_plan(plan, raw)  # fail before Prefect
    for v in variants:
        check_data(validate_params(apply(raw, v.overrides)).data, root)
    # on a cluster, as many variants run at once as it has workers (--workers: a LocalCluster)
    workers = check_cluster(args, root, params) if args.address else args.workers
    flows = _load_flows("sweep")
    if workers > 1:
        print(
            "greenpipe: variants run side by side, so CodeCarbon counts each stage's own "
            "processes (tracking.codecarbon_mode: process, unless the plan sets it)",
            file=sys.stderr,
        )
    measure_idle(params.tracking, "process" if workers > 1 else None)
    with flows.shared_api():
        runner = flows.task_runner(workers, args.address, args.runner)
        out = flows.sweep.with_options(task_runner=runner)(
            plan=args.plan, root=str(root), workers=workers
        )
    results = out["results"]
    print(f"sweep {out['sweep']}: {sum(r['ok'] for r in results)}/{len(results)} variants ok")
    for r in results:
        status = "ok    " if r["ok"] else "FAILED"
        print(f"  {status} {r['variant']:<60} {r.get('seconds', 0):7.0f} s  {r['reason']}")
    print(f"compare: dvc exp show | MLflow tag greenpipe.sweep = '{out['sweep']}'")
    if any(r["ok"] for r in results):  # the comparison and Pareto front over this sweep
        folder = f"reports/sweeps/{out['sweep']}"
        report(root, folder, "total", sweep=out["sweep"])
        print(f"sweep report: {folder}/")
    failed = [r for r in results if not r["ok"]]
    if failed:
        raise GreenpipeError(
            f"{len(failed)} of {len(results)} variant(s) failed; first: "
            f"{failed[0]['variant']}: {failed[0]['reason']}"
        )
    return 0


def check_cluster(args: argparse.Namespace, root: Path, params) -> int:
    """Before anything runs: the scheduler and every worker at --address can take part
    (greenpipe importable, this repo at the same path, a tracking store and Prefect API they
    all reach). Returns the number of workers."""
    if args.runner != "dask":
        raise UsageError("--address is a Dask scheduler: drop --runner threads, or --address")
    from greenpipe.flows.cluster import check_cluster as check
    from greenpipe.tracking import runs

    uri = runs.resolve_tracking_uri(params.tracking.mlflow_uri, root)
    n = check(args.address, root, uri, os.environ.get("PREFECT_API_URL"))
    print(f"greenpipe: {n} Dask worker(s) at {args.address} see this repo", file=sys.stderr)
    return n


def cmd_serve(args: argparse.Namespace) -> int:
    root = Path(args.root).resolve()
    params = load_params(root / "params.yaml")
    check_data(params.data, root)
    api = os.environ.get("PREFECT_API_URL")
    if not api:
        raise UsageError(
            "greenpipe serve needs a Prefect server: run `prefect server start` "
            "and export PREFECT_API_URL=http://127.0.0.1:4200/api"
        )
    cron = args.cron if args.cron is not None else params.orchestration.cron
    if cron in ("", "none"):
        cron = None
    if cron is not None:
        from prefect.client.schemas.schedules import CronSchedule

        try:
            CronSchedule(cron=cron)
        except ValueError:
            raise UsageError(
                f"--cron {cron!r} is not a cron expression (e.g. '0 2 * * *')"
            ) from None
    name = args.name or params.orchestration.deployment
    print(
        f"serving greenpipe-experiment/{name} (schedule: {cron or 'none'}) on {api}; Ctrl-C stops",
        file=sys.stderr,
    )
    _load_flows("experiment").serve(str(root), name, cron)
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
    sub.add_parser(
        "flush",
        help="log the stage run records not yet in MLflow (waits for the background logger "
        "that `dvc repro` stages start)",
    ).set_defaults(fn=cmd_flush)
    rep = sub.add_parser("report", help="Pareto report over all runs of the MLflow experiment")
    rep.add_argument(
        "--energy",
        choices=("train", "inference", "total", "active"),
        default="total",
        help="energy axis the Pareto front ranks by (active: total above idle power)",
    )
    rep.add_argument(
        "--out", default="reports/pareto", help="output folder, inside the repo (repo-relative)"
    )
    rep.add_argument("--experiment", help="MLflow experiment (default: params.yaml experiment)")
    rep.add_argument("--no-tag", action="store_true", help="do not tag runs greenpipe.pareto")
    rep.add_argument("--sweep", help="only the runs of this sweep id (tag greenpipe.sweep)")
    rep.set_defaults(fn=cmd_report)
    v = sub.add_parser("verify", help="re-run stages in a temporary workspace and compare")
    v.add_argument("stages", nargs="*", help="stages to re-run (default: all, in graph order)")
    v.add_argument("--repeats", type=int, default=1, help="re-runs (spread of measurements)")
    v.add_argument("--keep", action="store_true", help="keep the temporary workspaces")
    v.set_defaults(fn=cmd_verify)
    w = sub.add_parser("sweep", help="run every variant of a plan as a DVC experiment")
    w.add_argument("plan", help="plan file (YAML grid), e.g. plans/kd-temperature-alpha.yaml")
    w.add_argument("--workers", type=int, default=2, help="variants run at once (default 2)")
    w.add_argument(
        "--runner",
        choices=["dask", "threads"],
        default="dask",
        help="Prefect task runner (default: dask)",
    )
    w.add_argument(
        "--address",
        help="an existing Dask scheduler, e.g. tcp://10.0.0.5:8786 (its workers must see this "
        "repo at the same path; checked first)",
    )
    w.set_defaults(fn=cmd_sweep)
    sv = sub.add_parser("serve", help="serve the experiment flow as a scheduled deployment")
    sv.add_argument("--cron", help="cron schedule (default: orchestration.cron; 'none' for none)")
    sv.add_argument("--name", help="deployment name (default: orchestration.deployment)")
    sv.set_defaults(fn=cmd_serve)
    return p


def main(argv: list[str] | None = None) -> None:
    _quiet_defaults()

    def _main(a: list[str] | None) -> int:
        args = build_parser().parse_args(a)
        return args.fn(args)

    run_main(_main, argv)
