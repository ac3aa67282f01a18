"""distill: train the student by Hinton KD from the teacher, and the same student from scratch.

Both students share architecture, initial weights and budget (epochs, batch size, lr,
patience), so the only difference is the teacher's soft targets. Each one's energy is
measured as its own CodeCarbon task.
"""

from __future__ import annotations

from greenpipe import artifacts
from greenpipe.distill.checks import check_param_ratio
from greenpipe.entry import backend_parser, backend_stage, main_of

PATHS = {
    "--data": "the data set",
    "--teacher": "the teacher model",
    "--student-kd": "the distilled student (written)",
    "--student-scratch": "the student trained from scratch (written)",
    "--plots-kd": "the KD student's curves (CSV)",
    "--plots-scratch": "the scratch student's curves (CSV)",
}


def main(argv: list[str] | None = None) -> None:
    args = backend_parser(__file__, __doc__, PATHS).parse_args(argv)
    with backend_stage(args) as (run, params, backend):
        cfg = params.distill
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
