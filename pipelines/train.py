"""train: fit the teacher CNN with early stopping on val loss; curves for `dvc plots`.

With train.nproc > 1 and the torch backend, the stage relaunches itself under torchrun and
trains data-parallel (DDP: gloo on CPU, NCCL on GPUs); rank 0 writes the teacher, and the
launcher, whose process tree holds every rank, records the run and its energy.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np

from greenpipe import artifacts
from greenpipe.backends import get_backend
from greenpipe.entry import backend_of, backend_parser, load, main_of, stage_run
from greenpipe.errors import GreenpipeError

RESULT_ENV = "GREENPIPE_DDP_RESULT"  # where rank 0 writes the teacher's metrics
PATHS = {
    "--data": "the data set",
    "--model": "the teacher (written)",
    "--plots": "the teacher's curves (CSV)",
}


def fit_teacher(backend, params, data: dict):
    backend.seed_everything(params.seed)
    x_train = data["train"][0]
    n_classes = int(np.max([y.max() for _, y in data.values()]) + 1)
    model = backend.build(params.train.model, x_train.shape[1:], n_classes)
    hist = backend.fit(model, data, params.train, desc=f"train teacher [{backend.name}]")
    return model, hist, len(x_train)


def _results(backend, model, hist, n_train: int, args, processes: int) -> dict:
    """Save the teacher and its curves; its metrics (without energy)."""
    size = artifacts.save_model(backend, model, args.model)
    artifacts.write_curves(args.plots, hist.epochs)
    return {
        "params": backend.count_params(model),
        "size_bytes": size,
        "epochs_run": len(hist.epochs),
        "best_epoch": hist.best_epoch,
        "val_loss": hist.best["val_loss"],
        "val_acc": hist.best["val_acc"],
        "train_samples": n_train,
        "processes": processes,
        "device": backend.device(),
    }


def rank_main(args, params) -> int:
    """One DDP rank under torchrun: the same fit everywhere; rank 0 saves the teacher and
    hands its metrics to the launcher (which measures every rank's energy)."""
    from greenpipe.backends.torch import distributed as ddp

    ddp.init()
    backend = get_backend("torch")
    model, hist, n_train = fit_teacher(backend, params, artifacts.load_dataset(args.data))
    if ddp.is_main():
        results = _results(backend, model, hist, n_train, args, ddp.world())
        # a hand-off to the launcher in its temporary folder, not a stage output
        Path(os.environ[RESULT_ENV]).write_text(json.dumps(results))
    ddp.finish()
    return 0


def launch_ddp(args, params, nproc: int) -> int:
    """train.nproc > 1 (torch): the stage run and its energy span live in this launcher, so
    process mode counts torchrun and every rank (its children), not rank 0 alone."""
    from greenpipe.backends.torch import distributed as ddp

    ddp.check_nproc(nproc)  # before the stage's run opens: a config error, not a failed run
    stage = stage_run("train@torch", params, args.metrics)
    with stage as run, tempfile.TemporaryDirectory() as tmp:
        result = Path(tmp) / "rank0.json"
        with run.meter.task("teacher") as energy:
            code = ddp.relaunch_with_torchrun(nproc, {RESULT_ENV: str(result)})
        if code != 0 or not result.is_file():
            raise GreenpipeError(
                f"torchrun with {nproc} processes exited {code}; see the ranks' output above, "
                "or set train.nproc: 1"
            )
        run.log_metrics({"teacher": run.figures(energy), **json.loads(result.read_text())})
    return 0


def main(argv: list[str] | None = None) -> int:
    args = backend_parser(__file__, __doc__, PATHS).parse_args(argv)
    params = load(args)
    name, nproc = backend_of(args, params), params.train.nproc
    if name == "torch" and nproc > 1:
        if RESULT_ENV in os.environ:  # set by launch_ddp for the ranks
            return rank_main(args, params)
        return launch_ddp(args, params, nproc)
    backend = get_backend(name)
    with stage_run(f"train@{backend.name}", params, args.metrics) as run:
        data = artifacts.load_dataset(args.data)
        # the model's energy to obtain: build, fit and save (the students' boundary too)
        with run.meter.task("teacher") as energy:
            model, hist, n_train = fit_teacher(backend, params, data)
            results = _results(backend, model, hist, n_train, args, 1)
        run.log_metrics({"teacher": run.figures(energy), **results})
    return 0


if __name__ == "__main__":
    main_of(main)
