"""compress: quantize the data set to uint8 and store it in a compressed container."""

from __future__ import annotations

from greenpipe import artifacts
from greenpipe.data.compress import encode, raw_nbytes
from greenpipe.entry import load, main_of, stage_parser
from greenpipe.tracking.stage import stage_run


def main(argv: list[str] | None = None) -> None:
    p = stage_parser("compress", __doc__)
    p.add_argument("--in", dest="inp", default="data/augmented.npz")
    p.add_argument("--out", default="data/dataset.npz")
    args = p.parse_args(argv)
    params = load(args)
    with stage_run("compress", params, args.metrics) as run:
        splits = artifacts.load_splits(args.inp)
        blob = encode(splits, params.compress)
        artifacts.write_bytes(args.out, blob)
        before = raw_nbytes(splits)
        run.log_metrics(
            {"bytes_before": before, "bytes_after": len(blob), "ratio": before / max(len(blob), 1)}
        )


if __name__ == "__main__":
    main_of(main)
