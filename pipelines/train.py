"""train: fit the teacher CNN with early stopping on val loss; curves for `dvc plots`.

With train.nproc > 1 and the torch backend, the stage relaunches itself under torchrun and
trains data-parallel (DDP: gloo on CPU, NCCL on GPUs); rank 0 records and writes the results.
"""

from __future__ import annotations

import numpy as np

from greenpipe import artifacts
from greenpipe.backends import get_backend
from greenpipe.entry import backend_of, backend_parser, load, main_of
from greenpipe.tracking.stage import stage_run


def fit_teacher(backend, params, data_path: str):
    data = artifacts.load_dataset(data_path)
    backend.seed_everything(params.seed)
    x_train = data["train"][0]
    n_classes = int(np.max([y.max() for _, y in data.values()]) + 1)
    model = backend.build(params.train.model, x_train.shape[1:], n_classes)
    hist = backend.fit(model, data, params.train, desc=f"train teacher [{backend.name}]")
    return model, hist, len(x_train)


def main(argv: list[str] | None = None) -> int:
    p = backend_parser("train", __doc__)
    p.add_argument("--data", default="data/dataset.npz")
    p.add_argument("--model", required=True)
    p.add_argument("--plots", required=True)
    args = p.parse_args(argv)
    params = load(args)
    name, nproc = backend_of(args, params), params.train.nproc
    ddp = None
    if name == "torch" and nproc > 1:
        from greenpipe.backends.torch import distributed as ddp

        if not ddp.under_torchrun():
            return ddp.relaunch_with_torchrun(nproc)
        ddp.init()
    backend = get_backend(name)
    if ddp is not None and not ddp.is_main():  # other ranks: the same fit, nothing recorded
        fit_teacher(backend, params, args.data)
        ddp.finish()
        return 0
    with stage_run(f"train@{backend.name}", params, args.metrics) as run:
        model, hist, n_train = fit_teacher(backend, params, args.data)
        size = artifacts.save_model(backend, model, args.model)
        artifacts.write_curves(args.plots, hist.epochs)
        run.log_metrics(
            {
                "params": backend.count_params(model),
                "size_bytes": size,
                "epochs_run": len(hist.epochs),
                "best_epoch": hist.best_epoch,
                "val_loss": hist.best["val_loss"],
                "val_acc": hist.best["val_acc"],
                "train_samples": n_train,
                "processes": ddp.world() if ddp is not None else 1,
                "device": backend.device(),
            }
        )
    if ddp is not None:
        ddp.finish()
    return 0


if __name__ == "__main__":
    main_of(main)
