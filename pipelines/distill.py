"""distill: train the student by Hinton KD from the teacher, and the same student from scratch.

Both students share architecture, initial weights and budget (epochs, batch size, lr,
patience), so the only difference is the teacher's soft targets. Each one's energy is
measured as its own CodeCarbon task.
"""

from __future__ import annotations

from greenpipe import artifacts
from greenpipe.backends import get_backend
from greenpipe.entry import backend_of, backend_parser, load, main_of
from greenpipe.errors import GreenpipeError
from greenpipe.tracking.stage import stage_run


def check_param_ratio(t_params: int, s_params: int, min_ratio: float) -> None:
    if t_params / s_params < min_ratio:
        raise GreenpipeError(
            f"student has {s_params} params, teacher {t_params}: ratio "
            f"{t_params / s_params:.1f} < distill.min_param_ratio {min_ratio}; "
            "shrink distill.model or grow train.model"
        )


def main(argv: list[str] | None = None) -> None:
    p = backend_parser("distill", __doc__)
    p.add_argument("--data", default="data/dataset.npz")
    p.add_argument("--teacher", required=True)
    p.add_argument("--student-kd", required=True)
    p.add_argument("--student-scratch", required=True)
    p.add_argument("--plots-kd", required=True)
    p.add_argument("--plots-scratch", required=True)
    args = p.parse_args(argv)
    params = load(args)
    cfg = params.distill
    backend = get_backend(backend_of(args, params))
    with stage_run(f"distill@{backend.name}", params, args.metrics) as run:
        data = artifacts.load_dataset(args.data)
        teacher = backend.load(args.teacher)
        shape, n_classes = data["train"][0].shape[1:], teacher.meta["n_classes"]
        t_params = backend.count_params(teacher)
        results = {}
        for name, path, plots in (
            ("student_kd", args.student_kd, args.plots_kd),
            ("student_scratch", args.student_scratch, args.plots_scratch),
        ):
            backend.seed_everything(params.seed)  # same init for both students
            # the model's energy to obtain: build, fit and save (the teacher's boundary too)
            with run.meter.task(name) as energy:
                student = backend.build(cfg.model, shape, n_classes)
                s_params = backend.count_params(student)
                check_param_ratio(t_params, s_params, cfg.min_param_ratio)
                desc = f"{name} [{backend.name}]"
                if name == "student_kd":
                    hist = backend.distill(student, teacher, data, cfg, desc=desc)
                else:
                    hist = backend.fit(student, data, cfg, desc=desc)
                size = artifacts.save_model(backend, student, path)
            artifacts.write_curves(plots, hist.epochs)
            results[name] = {
                "params": s_params,
                "size_bytes": size,
                "epochs_run": len(hist.epochs),
                "best_epoch": hist.best_epoch,
                "val_loss": hist.best["val_loss"],
                "val_acc": hist.best["val_acc"],
                **run.figures(energy),
            }
        run.log_metrics(
            {
                **results,
                "teacher_params": t_params,
                "param_ratio": t_params / results["student_kd"]["params"],
            }
        )


if __name__ == "__main__":
    main_of(main)
