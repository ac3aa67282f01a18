"""prepare: load the source data set and split it into stratified train/val/test by seed."""

from __future__ import annotations

import numpy as np

from greenpipe import artifacts
from greenpipe.config import DataConfig
from greenpipe.data.sources import (
    load_digits_images,
    load_image_folder,
    load_npz_images,
    stratified_split,
)
from greenpipe.entry import load, main_of, stage_parser
from greenpipe.tracking.stage import stage_run


def _load(cfg: DataConfig) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Samples, labels and the files skipped as unreadable (image_folder only)."""
    if cfg.source == "digits":
        return (*load_digits_images(), [])
    if cfg.source == "npz":
        return (*load_npz_images(cfg.path), [])
    x, y, _, skipped = load_image_folder(cfg.path, cfg.image_size, cfg.channels)
    return x, y, skipped


def main(argv: list[str] | None = None) -> None:
    p = stage_parser("prepare", __doc__)
    p.add_argument("--out", default="data/prepared.npz")
    args = p.parse_args(argv)
    params = load(args)
    cfg = params.data
    with stage_run("prepare", params, args.metrics) as run:
        x, y, skipped = _load(cfg)
        splits = stratified_split(x, y, cfg.val_fraction, cfg.test_fraction, params.seed)
        artifacts.save_splits(args.out, splits)
        run.log_metrics(
            {
                "samples": {name: len(s[1]) for name, s in splits.items()},
                "classes": int(len(np.unique(y))),
                "skipped_unreadable": len(skipped),
                "image": {"height": x.shape[1], "width": x.shape[2], "channels": x.shape[3]},
            }
        )


if __name__ == "__main__":
    main_of(main)
