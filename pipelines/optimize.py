"""optimize: int8 post-training quantization of the distilled student."""

from __future__ import annotations

from pathlib import Path

from greenpipe import artifacts
from greenpipe.backends import get_backend
from greenpipe.entry import backend_of, backend_parser, load, main_of
from greenpipe.tracking.stage import stage_run


def main(argv: list[str] | None = None) -> None:
    p = backend_parser("optimize", __doc__)
    p.add_argument("--data", default="data/dataset.npz")
    p.add_argument("--model", required=True)
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    params = load(args)
    cfg = params.optimize
    backend = get_backend(backend_of(args, params))
    with stage_run(f"optimize@{backend.name}", params, args.metrics) as run:
        data = artifacts.load_dataset(args.data)
        model = backend.load(args.model)
        qmodel = backend.quantize(model, data["train"][0], cfg)
        size = artifacts.save_model(backend, qmodel, args.out)
        before = Path(args.model).stat().st_size
        run.log_metrics(
            {
                "method": cfg.quantization,
                "size_bytes_before": before,
                "size_bytes_after": size,
                "size_ratio": size / before,
                "params_before": backend.count_params(model),
                "params_after": backend.count_params(qmodel),
            }
        )


if __name__ == "__main__":
    main_of(main)
