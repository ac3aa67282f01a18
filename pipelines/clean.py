"""clean: drop invalid samples, exact duplicates and val/test samples leaked into train."""

from __future__ import annotations

from greenpipe import artifacts
from greenpipe.data.clean import REASONS, clean_splits
from greenpipe.entry import load, main_of, stage_parser
from greenpipe.tracking.stage import stage_run


def main(argv: list[str] | None = None) -> None:
    p = stage_parser("clean", __doc__)
    p.add_argument("--in", dest="inp", default="data/prepared.npz")
    p.add_argument("--out", default="data/clean.npz")
    args = p.parse_args(argv)
    params = load(args)
    with stage_run("clean", params, args.metrics) as run:
        splits = artifacts.load_splits(args.inp)
        shape = splits["train"][0].shape[1:]
        cleaned, counts = clean_splits(splits, params.clean, shape)
        artifacts.save_splits(args.out, cleaned)
        run.log_metrics(
            {
                "removed": counts,
                "removed_total": {r: sum(c[r] for c in counts.values()) for r in REASONS},
                "samples": {name: len(s[1]) for name, s in cleaned.items()},
            }
        )


if __name__ == "__main__":
    main_of(main)
