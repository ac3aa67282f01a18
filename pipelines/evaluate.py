"""evaluate: accuracy and macro-F1 (with bootstrap intervals), size, latency at batch 1 and at
a larger batch, throughput, peak memory and energy per 1,000 inferences (mean and spread over
repeats, the models measured in turn) of every model on the test split, all through the same
code path."""

from __future__ import annotations

from pathlib import Path

from greenpipe import artifacts
from greenpipe.data.names import check_names, read_names
from greenpipe.entry import backend_parser, backend_stage, main_of
from greenpipe.evaluate.memory import peak_memory
from greenpipe.evaluate.quality import bootstrap_ci, confusion, confusion_csv, quality
from greenpipe.evaluate.runtime import describe
from greenpipe.evaluate.speed import energy_rounds, latency_ms, throughput

PATHS = {
    "--data": "the data set",
    "--classes": "class names (JSON), by label",
    "--confusion": "predicted against actual class of every test sample (CSV)",
}


def _model_arg(text: str) -> tuple[str, str]:
    name, _, path = text.partition("=")
    if not name or not path:
        raise SystemExit(f"--model expects NAME=PATH, got {text!r}")
    return name, path


def predictor(backend, model):
    """Logits of one batch, run as one call whatever its size."""

    def predict(xb):
        return backend.predict(model, xb, batch_size=max(len(xb), 1))

    return predict


def evaluate_one(backend, model, x, y, cfg, seed: int) -> tuple[dict, object]:
    """Quality (with bootstrap CIs), latency at batch 1 and at cfg.latency_batch_size,
    throughput and params of one model; and its test logits."""
    predict = predictor(backend, model)
    logits = backend.predict(model, x)
    out = quality(logits, y)
    out.update(bootstrap_ci(y, logits.argmax(1), cfg.bootstrap_samples, cfg.confidence, seed))
    out.update(latency_ms(predict, x, cfg.warmup, cfg.latency_runs))
    out.update(latency_ms(predict, x, cfg.warmup, cfg.latency_runs, cfg.latency_batch_size))
    out["throughput_sps"] = throughput(predict, x, cfg.throughput_batch_size, 4 * len(x))
    out["params"] = backend.count_params(model)
    return out, logits


def main(argv: list[str] | None = None) -> None:
    p = backend_parser(__file__, __doc__, PATHS)
    p.add_argument(
        "--model", action="append", type=_model_arg, required=True, help="NAME=PATH, once per model"
    )
    args = p.parse_args(argv)
    with backend_stage(args) as (run, params, backend):
        cfg = params.evaluate
        x, y = artifacts.load_dataset(args.data)["test"]
        not_made = {name: artifacts.skipped_reason(path) for name, path in args.model}
        results = {
            n: {"skipped": why, "backend": backend.name} for n, why in not_made.items() if why
        }
        made = [(name, path) for name, path in args.model if not not_made[name]]
        models = {name: backend.load(path) for name, path in made}
        names, rows = read_names(args.classes), []
        check_names(names, int(y.max()) + 1, "the test split", args.classes)
        for name, path in made:
            res, logits = evaluate_one(backend, models[name], x, y, cfg, params.seed)
            check_names(names, logits.shape[1], f"model '{name}'", args.classes)
            res.update(size_bytes=Path(path).stat().st_size, backend=backend.name)
            res["arch"] = models[name].meta["arch"]
            res["device"] = backend.device_of(models[name])  # where its figures were measured
            res.update(describe(backend.name, models[name].meta))
            res["confusion"] = confusion(logits, y, len(names)).tolist()  # rows: actual
            if cfg.peak_memory:
                res.update(peak_memory(backend.name, path, x, cfg.throughput_batch_size))
            results[name] = res
            pred = logits.argmax(1)
            rows += [(name, names[a], names[b]) for a, b in zip(y, pred, strict=True)]
        predicts = {f"infer_{n}": predictor(backend, m) for n, m in models.items()}
        energy = energy_rounds(
            predicts,
            x,
            cfg.throughput_batch_size,
            cfg.energy_inferences,
            run.meter.task,
            cfg.energy_repeats,
            cfg.energy_min_seconds,
            run.active_j,
        )
        for name in models:
            results[name].update(energy[f"infer_{name}"])
        artifacts.write_text(args.confusion, confusion_csv(rows))
        run.log_metrics({"models": results, "test_samples": len(y), "classes": names})


if __name__ == "__main__":
    main_of(main)
