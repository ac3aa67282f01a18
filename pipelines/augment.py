"""augment: seeded, deterministic augmentation of the train split only (albumentations), and a
PNG grid of originals beside their augmented copies."""

from __future__ import annotations

import numpy as np

from greenpipe import artifacts
from greenpipe.data.augment import augment
from greenpipe.data.grid import image_grid
from greenpipe.entry import main_of, stage, stage_parser

PATHS = {
    "--in": "the cleaned data set",
    "--out": "the data set with the augmented train split",
    "--grid": "PNG of originals beside their copies",
}


def _examples(x_out: np.ndarray, n_in: int, factor: int, samples: int) -> bytes:
    """Each of the first `samples` originals followed by its factor - 1 copies, one per row."""
    k = min(samples, n_in)
    rows = [x_out[i + j * n_in] for i in range(k) for j in range(factor)]
    caps = ["original" if j == 0 else f"copy {j}" for _ in range(k) for j in range(factor)]
    return image_grid(np.array(rows), caps, cols=min(factor, 8), title="augmentation examples")


def main(argv: list[str] | None = None) -> None:
    args = stage_parser(__file__, __doc__, PATHS).parse_args(argv)
    with stage(args) as (run, params):
        cfg = params.augment
        splits = artifacts.load_splits(args.in_)
        x, y = splits["train"]
        splits["train"] = augment(x, y, cfg, params.seed)
        artifacts.save_splits(args.out, splits)
        grid = _examples(splits["train"][0], len(y), cfg.factor, cfg.grid_samples)
        artifacts.write_bytes(args.grid, grid)
        run.log_artifact(args.grid)
        run.log_metrics(
            {
                "train_samples_in": len(y),
                "train_samples_out": len(splits["train"][1]),
                "factor": cfg.factor,
                "transforms": len(cfg.transforms),
            }
        )


if __name__ == "__main__":
    main_of(main)
