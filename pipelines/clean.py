"""clean: drop invalid samples, exact and near duplicates, val/test samples leaked into train,
and find label issues (cleanlab); counts per reason, class balance and a PNG of flagged samples."""

from __future__ import annotations

import numpy as np

from greenpipe import artifacts
from greenpipe.data.clean import REASONS, audit_splits, class_balance, count_reasons, dropped
from greenpipe.data.grid import image_grid
from greenpipe.entry import main_of, stage, stage_parser

PATHS = {
    "--in": "the prepared data set",
    "--out": "the cleaned data set",
    "--grid": "PNG of the flagged samples",
}


def _flagged_grid(splits, reasons, limit: int) -> bytes:
    """The first `limit` flagged samples (split order), captioned `split: reason (label)`."""
    imgs, caps = [], []
    for name, (x, y) in splits.items():
        for i in np.flatnonzero(reasons[name] != ""):
            if len(imgs) < limit and x.ndim == 4 and np.isfinite(x[i]).all():
                imgs.append(x[i])
                caps.append(f"{name}: {reasons[name][i]} ({y[i]})")
    return image_grid(np.array(imgs), caps, title="flagged samples: split: reason (label)")


def main(argv: list[str] | None = None) -> None:
    args = stage_parser(__file__, __doc__, PATHS).parse_args(argv)
    with stage(args) as (run, params):
        cfg = params.clean
        splits = artifacts.load_splits(args.in_)
        shape = splits["train"][0].shape[1:]
        reasons = audit_splits(splits, cfg, shape, params.seed)
        cleaned = {
            n: (x[~dropped(reasons[n], cfg)], y[~dropped(reasons[n], cfg)])
            for n, (x, y) in splits.items()
        }
        artifacts.save_splits(args.out, cleaned)
        artifacts.write_bytes(args.grid, _flagged_grid(splits, reasons, cfg.grid_max))
        run.log_artifact(args.grid)
        counts = count_reasons(reasons)
        run.log_metrics(
            {
                "found": counts,
                "found_total": {r: sum(c[r] for c in counts.values()) for r in REASONS},
                "removed_total": {
                    r: int(sum(((a == r) & dropped(a, cfg)).sum() for a in reasons.values()))
                    for r in REASONS
                },
                "samples": {name: len(s[1]) for name, s in cleaned.items()},
                "balance": {name: class_balance(s[1]) for name, s in cleaned.items()},
            }
        )


if __name__ == "__main__":
    main_of(main)
