"""prepare: load the source data set and split it into stratified train/val/test by seed."""

from __future__ import annotations

import numpy as np

from greenpipe import artifacts
from greenpipe.data.sources import load_digits_images, load_npz_images, stratified_split
from greenpipe.entry import load, main_of, stage_parser
from greenpipe.tracking.stage import stage_run


def main(argv: list[str] | None = None) -> None:
    p = stage_parser("prepare", __doc__)
    p.add_argument("--out", default="data/prepared.npz")
    args = p.parse_args(argv)
    params = load(args)
    cfg = params.data
    with stage_run("prepare", params, args.metrics) as run:
        x, y = load_digits_images() if cfg.source == "digits" else load_npz_images(cfg.path)
        splits = stratified_split(x, y, cfg.val_fraction, cfg.test_fraction, params.seed)
        artifacts.save_splits(args.out, splits)
        run.log_metrics(
            {
                "samples": {name: len(s[1]) for name, s in splits.items()},
                "classes": int(len(np.unique(y))),
                "image": {"height": x.shape[1], "width": x.shape[2], "channels": x.shape[3]},
            }
        )


if __name__ == "__main__":
    main_of(main)
