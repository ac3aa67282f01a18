"""optimize: int8 post-training quantization of the distilled student; structured L1-norm
pruning of it (fine-tuned by distillation from the teacher); and int8 of the pruned student.

Each derived model is made inside its own CodeCarbon task, so its energy to obtain is charged
exactly, and records params, file size, val accuracy and latency before and after.
"""

from __future__ import annotations

from pathlib import Path

from greenpipe import artifacts
from greenpipe.backends import get_backend
from greenpipe.entry import backend_of, backend_parser, load, main_of
from greenpipe.optimize.prune import fine_tune_config, prune_model
from greenpipe.optimize.record import before_after, snapshot
from greenpipe.tracking.stage import stage_run


def _args(argv: list[str] | None):
    p = backend_parser("optimize", __doc__)
    p.add_argument("--data", default="data/dataset.npz")
    p.add_argument("--model", required=True, help="the distilled student (float)")
    p.add_argument("--teacher", required=True, help="teacher for fine-tuning after pruning")
    p.add_argument("--out", required=True, help="int8 of --model")
    p.add_argument("--pruned", required=True, help="pruned and fine-tuned --model")
    p.add_argument("--pruned-int8", required=True, help="int8 of the pruned model")
    return p.parse_args(argv)


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
        "channels": list(pruned.meta["arch"]["channels"]),
        "hidden": pruned.meta["arch"]["hidden"],
    }
    if prune.fine_tune_epochs > 0:
        cfg = fine_tune_config(params.distill, prune)
        hist = backend.distill(pruned, teacher, data, cfg, desc=f"fine-tune [{backend.name}]")
        info["fine_tune_epochs_run"] = len(hist.epochs)
    return pruned, info


def main(argv: list[str] | None = None) -> None:
    args = _args(argv)
    params = load(args)
    cfg, ev = params.optimize, params.evaluate
    backend = get_backend(backend_of(args, params))
    with stage_run(f"optimize@{backend.name}", params, args.metrics) as run:
        data = artifacts.load_dataset(args.data)
        x_tr, val = data["train"][0], data["val"]
        model, teacher = backend.load(args.model), backend.load(args.teacher)
        results = {}
        with run.meter.task("quantize") as energy:
            q = backend.quantize(model, x_tr, cfg)
            artifacts.save_model(backend, q, args.out)
        paths = (args.model, args.out)
        fig = run.figures(energy)
        results["student_kd_int8"] = record(backend, (model, q), paths, fig, val, ev)
        with run.meter.task("prune") as energy:
            pruned, info = prune_and_fine_tune(backend, model, teacher, data, params)
            artifacts.save_model(backend, pruned, args.pruned)
        paths = (args.model, args.pruned)
        results["student_kd_pruned"] = {
            **record(backend, (model, pruned), paths, run.figures(energy), val, ev),
            **info,
        }
        with run.meter.task("quantize_pruned") as energy:
            pq = backend.quantize(pruned, x_tr, cfg)
            artifacts.save_model(backend, pq, args.pruned_int8)
        paths = (args.pruned, args.pruned_int8)
        fig = run.figures(energy)
        results["student_kd_pruned_int8"] = record(backend, (pruned, pq), paths, fig, val, ev)
        run.log_metrics({**results, "method": cfg.quantization})


if __name__ == "__main__":
    main_of(main)
