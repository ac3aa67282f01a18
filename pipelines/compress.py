"""compress: subsample the train split, downscale, quantize and store the data set in a
compressed, byte-deterministic container (a DVC output pushed to the remote)."""

from __future__ import annotations

import time

from greenpipe import artifacts
from greenpipe.data.compress import encode, raw_nbytes
from greenpipe.data.subsample import subsample
from greenpipe.entry import main_of, stage, stage_parser

PATHS = {"--in": "the augmented data set", "--out": "the compressed data set (container)"}


def main(argv: list[str] | None = None) -> None:
    args = stage_parser(__file__, __doc__, PATHS).parse_args(argv)
    with stage(args) as (run, params):
        cfg = params.compress
        splits = artifacts.load_splits(args.in_)
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
