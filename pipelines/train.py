"""train: fit the teacher CNN with early stopping on val loss; curves for `dvc plots`."""

from __future__ import annotations

import numpy as np

from greenpipe import artifacts
from greenpipe.backends import get_backend
from greenpipe.entry import backend_of, backend_parser, load, main_of
from greenpipe.tracking.stage import stage_run


def main(argv: list[str] | None = None) -> None:
    p = backend_parser("train", __doc__)
    p.add_argument("--data", default="data/dataset.npz")
    p.add_argument("--model", required=True)
    p.add_argument("--plots", required=True)
    args = p.parse_args(argv)
    params = load(args)
    cfg = params.train
    backend = get_backend(backend_of(args, params))
    with stage_run(f"train@{backend.name}", params, args.metrics) as run:
        data = artifacts.load_dataset(args.data)
        backend.seed_everything(params.seed)
        x_train = data["train"][0]
        n_classes = int(np.max([y.max() for _, y in data.values()]) + 1)
        model = backend.build(cfg.model, x_train.shape[1:], n_classes)
        hist = backend.fit(model, data, cfg, desc=f"train teacher [{backend.name}]")
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
                "train_samples": len(x_train),
                "device": backend.device(),
            }
        )


if __name__ == "__main__":
    main_of(main)
