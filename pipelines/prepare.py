"""prepare: load the source data set and split it into stratified train/val/test by seed; the
class names (label i is classes[i]) go beside it for the stages that show names."""

from __future__ import annotations

import numpy as np

from greenpipe import artifacts
from greenpipe.data.names import names_record
from greenpipe.data.sources import load_source, stratified_split
from greenpipe.entry import main_of, stage, stage_parser

PATHS = {"--out": "the split data set", "--classes": "class names (JSON), by label"}


def main(argv: list[str] | None = None) -> None:
    args = stage_parser(__file__, __doc__, PATHS).parse_args(argv)
    with stage(args) as (run, params):
        cfg = params.data
        x, y, classes, skipped = load_source(cfg)
        splits = stratified_split(x, y, cfg.val_fraction, cfg.test_fraction, params.seed, classes)
        artifacts.save_splits(args.out, splits)
        artifacts.write_json(args.classes, names_record(classes))
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
