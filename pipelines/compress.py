"""compress: subsample the train split, downscale, quantize and store the data set in a
compressed, byte-deterministic container (a DVC output pushed to the remote)."""

from __future__ import annotations

import time

from greenpipe import artifacts
from greenpipe.data.compress import encode, raw_nbytes
from greenpipe.data.subsample import subsample
from greenpipe.entry import load, main_of, stage_parser
from greenpipe.tracking.stage import stage_run


def main(argv: list[str] | None = None) -> None:
    p = stage_parser("compress", __doc__)
    p.add_argument("--in", dest="inp", default="data/augmented.npz")
    p.add_argument("--out", default="data/dataset.npz")
    args = p.parse_args(argv)
    params = load(args)
    cfg = params.compress
    with stage_run("compress", params, args.metrics) as run:
        splits = artifacts.load_splits(args.inp)
        before = raw_nbytes(splits)
        samples_in = {name: len(s[1]) for name, s in splits.items()}
        start = time.perf_counter()
        x, y = splits["train"]
        keep = subsample(x, y, cfg.fraction, cfg.subsample, params.seed)  # never val/test
        splits["train"] = (x[keep], y[keep])
        blob = encode(splits, cfg)
        seconds = time.perf_counter() - start
        artifacts.write_bytes(args.out, blob)
        run.log_metrics(
            {
                "bytes_raw": before,
                "bytes_stored": len(blob),
                "ratio": before / max(len(blob), 1),
                "samples_in": samples_in,
                "samples_kept": {name: len(s[1]) for name, s in splits.items()},
                "compress_s": seconds,
            }
        )


if __name__ == "__main__":
    main_of(main)
