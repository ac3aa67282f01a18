"""optimize: int8 post-training quantization of the distilled student; structured L1-norm
pruning of it (fine-tuned by distillation from the teacher); int8 of the pruned student; and
the distilled student in the inference runtimes of optimize.runtimes (fp32 and static int8,
calibrated on the same calibration samples).

Each derived model is made inside its own CodeCarbon task, so its energy to obtain is charged
exactly, and records params, file size, val accuracy and latency before and after.
"""

from __future__ import annotations

from pathlib import Path

from greenpipe import artifacts
from greenpipe.backends.base import NotApplicable
from greenpipe.entry import backend_parser, backend_stage, main_of
from greenpipe.optimize.prune import fine_tune_config, narrowed, prune_model
from greenpipe.optimize.record import before_after, snapshot

PATHS = {
    "--data": "the data set",
    "--model": "the distilled student (float)",
    "--teacher": "teacher for fine-tuning after pruning",
    "--out": "int8 of --model",
    "--pruned": "pruned and fine-tuned --model",
    "--pruned-int8": "int8 of the pruned model",
}


def _args(argv: list[str] | None):
    p = backend_parser(__file__, __doc__, PATHS)
    p.add_argument(
        "--runtime",
        action="append",
        type=runtime_arg,
        required=True,
        help="RUNTIME:PRECISION=PATH (precision fp32 | int8): --model in that runtime",
    )
    return p.parse_args(argv)


def runtime_arg(text: str) -> tuple[str, str, str]:
    """RUNTIME:PRECISION=PATH -> (runtime, precision, path)."""
    spec, _, path = text.partition("=")
    runtime, _, precision = spec.partition(":")
    if not runtime or precision not in ("fp32", "int8") or not path:
        raise SystemExit(f"--runtime expects RUNTIME:PRECISION=PATH (fp32 | int8), got {text!r}")
    return runtime, precision, path


def record(backend, models, paths, figures, val, ev) -> dict:
    """Before/after params, size, val accuracy and latency of (before, after) models, plus
    `figures`: the energy (J, gross and active) and duration (s) of the window that made
    `after`."""
    snaps = [snapshot(backend, m, *val, ev.warmup, ev.latency_runs) for m in models]
    for snap, path in zip(snaps, paths, strict=True):
        snap["size_bytes"] = Path(path).stat().st_size
    return {**before_after(*snaps), **figures}


def prune_and_fine_tune(backend, model, teacher, data, params) -> tuple[object, dict]:
    """The pruned student, fine-tuned by distillation; and what pruning alone left."""
    prune = params.optimize.prune
    backend.seed_everything(params.seed)
    pruned = prune_model(backend, model, prune)
    x_va, y_va = data["val"]
    info = {
        "val_acc_before_fine_tune": snapshot(backend, pruned, x_va, y_va, 0, 10)["val_acc"],
        "fine_tune_epochs_run": 0,
        "widths": narrowed(model.meta["graph"], pruned.meta["graph"]),
    }
    if prune.fine_tune_epochs > 0:
        cfg = fine_tune_config(params.distill, prune)
        hist = backend.distill(pruned, teacher, data, cfg, desc=f"fine-tune [{backend.name}]")
        info["fine_tune_epochs_run"] = len(hist.epochs)
    return pruned, info


def derive(run, backend, task: str, path: str, make) -> tuple[object | None, dict | None]:
    """Make one derived model in its own CodeCarbon task and save it to `path`; a model that
    the optimization cannot handle (`NotApplicable`) gets a marker file with the reason."""
    with run.meter.task(task) as energy:
        try:
            made = make()
        except NotApplicable as exc:
            artifacts.write_skipped(path, str(exc))
            return None, {"skipped": str(exc)}
        model, info = made if isinstance(made, tuple) else (made, {})
        artifacts.save_model(backend, model, path)
    return model, {**run.figures(energy), **info}


def runtimes(run, backend, student, calib_x, outs, chosen, recorded) -> None:
    """The float `student` (a (model, path) pair) in each runtime:precision of `outs`, each
    made in its own CodeCarbon task; a runtime not in `chosen` (optimize.runtimes) gets a
    marker saying so."""
    model, model_path = student
    for runtime, precision, path in outs:
        name, tags = Path(path).stem, {"runtime": runtime, "precision": precision}
        if runtime not in chosen:
            why = f"runtime {runtime} is not in optimize.runtimes {list(chosen)}"
            artifacts.write_skipped(path, why)
            recorded(name, model, None, (), {"skipped": why, **tags})
            continue
        calib = calib_x if precision == "int8" else None
        made, info = derive(
            run,
            backend,
            f"runtime_{name}",
            path,
            lambda rt=runtime, c=calib: backend.runtime(model, rt, c),
        )
        recorded(name, model, made, (model_path, path), {**info, **tags})


def main(argv: list[str] | None = None) -> None:
    args = _args(argv)
    with backend_stage(args) as (run, params, backend):
        cfg, ev = params.optimize, params.evaluate
        data = artifacts.load_dataset(args.data)
        x_tr, val = data["train"][0], data["val"]
        model, teacher = backend.load(args.model), backend.load(args.teacher)
        results = {}

        def recorded(name, before, after, paths, info):
            if after is None:
                results[name] = info
            else:
                results[name] = {**record(backend, (before, after), paths, {}, val, ev), **info}

        q, info = derive(
            run, backend, "quantize", args.out, lambda: backend.quantize(model, x_tr, cfg)
        )
        recorded("student_kd_int8", model, q, (args.model, args.out), info)
        pruned, info = derive(
            run,
            backend,
            "prune",
            args.pruned,
            lambda: prune_and_fine_tune(backend, model, teacher, data, params),
        )
        recorded("student_kd_pruned", model, pruned, (args.model, args.pruned), info)
        if pruned is None:
            why = f"no pruned model to quantize: {info['skipped']}"
            artifacts.write_skipped(args.pruned_int8, why)
            results["student_kd_pruned_int8"] = {"skipped": why}
        else:
            pq, info = derive(
                run,
                backend,
                "quantize_pruned",
                args.pruned_int8,
                lambda: backend.quantize(pruned, x_tr, cfg),
            )
            recorded("student_kd_pruned_int8", pruned, pq, (args.pruned, args.pruned_int8), info)
        calib_x = x_tr[: cfg.calibration_samples]
        runtimes(run, backend, (model, args.model), calib_x, args.runtime, cfg.runtimes, recorded)
        run.log_metrics({**results, "method": cfg.quantization})


if __name__ == "__main__":
    main_of(main)
