"""augment: seeded, deterministic augmentation of the train split only."""

from __future__ import annotations

from greenpipe import artifacts
from greenpipe.data.augment import augment
from greenpipe.entry import load, main_of, stage_parser
from greenpipe.tracking.stage import stage_run


def main(argv: list[str] | None = None) -> None:
    p = stage_parser("augment", __doc__)
    p.add_argument("--in", dest="inp", default="data/clean.npz")
    p.add_argument("--out", default="data/augmented.npz")
    args = p.parse_args(argv)
    params = load(args)
    with stage_run("augment", params, args.metrics) as run:
        splits = artifacts.load_splits(args.inp)
        x, y = splits["train"]
        splits["train"] = augment(x, y, params.augment, params.seed)
        artifacts.save_splits(args.out, splits)
        run.log_metrics(
            {
                "train_samples_in": len(y),
                "train_samples_out": len(splits["train"][1]),
                "factor": params.augment.factor,
            }
        )


if __name__ == "__main__":
    main_of(main)
