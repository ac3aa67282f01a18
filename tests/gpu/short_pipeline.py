"""A short torch-only pipeline, the second half of `make gpu-check`: the digits split,
a teacher trained and a student distilled in the precision `auto` picks for the device
(fp16 with loss scaling on a GPU, fp32 on the CPU), with deterministic kernels, the
student's int8 in ONNX Runtime, and each model's test accuracy and the device it ran on;
every step is a window of one CodeCarbon energy span (greenpipe.tracking.energy).

It needs only torch and greenpipe's small dependencies, as on a bare CUDA machine: it
checks that no module of TensorFlow, MLflow, DVC or Prefect was imported. It prints a table
and, last, one JSON line after MARK; it exits 1 when a check fails.

Usage: python tests/gpu/short_pipeline.py [epochs]   (PYTHONPATH=src where greenpipe is not
installed)
"""

from __future__ import annotations

import json
import sys
import time

MARK = "GREENPIPE_GPU_CHECK "
FORBIDDEN = ("tensorflow", "keras", "mlflow", "dvc", "prefect")  # the bare machine has none


def _steps(epochs: int):
    """(name, make) for the teacher, the KD student and its int8, in order; `make(be, data,
    made)` returns the model."""
    from greenpipe.config import DistillConfig, FitConfig, ModelArch, ModelSpec, OptimizeConfig

    fit = FitConfig(epochs=epochs, batch_size=64, lr=0.01, patience=epochs)
    kd = DistillConfig(epochs=epochs, batch_size=64, lr=0.02, patience=epochs)
    teacher_spec = ModelSpec(cnn=ModelArch(channels=(16, 32), hidden=128))

    def teacher(be, data, made):
        model = be.build(teacher_spec, data["train"][0].shape[1:], 10)
        be.fit(model, data, fit, desc="gpu-check teacher")
        return model

    def student(be, data, made):
        model = be.build(kd.model, data["train"][0].shape[1:], 10)
        be.distill(model, made["teacher"], data, kd, desc="gpu-check student_kd")
        return model

    def int8(be, data, made):
        return be.quantize(made["student_kd"], data["train"][0], OptimizeConfig())

    return [("teacher", teacher), ("student_kd", student), ("student_kd_int8", int8)]


def run(epochs: int) -> dict:
    """Run the pipeline; its figures: device, models (accuracy, device, trained precision,
    energy J and seconds of the window that made each), the span's energy and sources."""
    from greenpipe.backends import get_backend
    from greenpipe.data.sources import load_digits_images, stratified_split
    from greenpipe.tracking.energy import EnergyMeter

    be = get_backend("torch")
    be.seed_everything(0)
    data = stratified_split(*load_digits_images(), 0.15, 0.2, seed=0)
    meter = EnergyMeter("FRA", 0.5, "gpu-check")
    meter.start()
    made, models = {}, {}
    for name, make in _steps(epochs):
        with meter.task(name) as box:
            made[name] = make(be, data, made)
        x, y = data["test"]
        acc = float((be.predict(made[name], x).argmax(1) == y).mean())
        reading = box["reading"]
        models[name] = {
            "accuracy": acc,
            "device": be.device_of(made[name]),
            "trained_precision": made[name].meta.get("trained_precision", "fp32"),
            "energy_j": reading.energy_j,
            "gpu_j": reading.gpu_j,
            "duration_s": reading.duration_s,
        }
    total = meter.stop()
    return {
        "device": be.device(),
        "models": models,
        "energy": total.as_metrics() if total else None,
        "sources": meter.sources(),
        "imported": sorted({m.split(".")[0] for m in sys.modules} & set(FORBIDDEN)),
    }


def problems(result: dict) -> list[str]:
    """What the run got wrong: a forbidden import, no energy figure, an unmeasured GPU, a
    model that learnt nothing."""
    out = [f"imported {m}, which a bare CUDA machine lacks" for m in result["imported"]]
    if result["energy"] is None:
        out.append("CodeCarbon gave no energy figure")
    cuda = result["device"]["device"] == "cuda"
    if cuda and not result["sources"]["gpu"].startswith("measured:nvml"):
        out.append(f"the GPU's energy was not measured by NVML: {result['sources']['gpu']}")
    for name, m in result["models"].items():
        if m["accuracy"] < 0.8:
            out.append(f"{name} reached only {m['accuracy']:.3f} test accuracy")
    if cuda and result["models"]["teacher"]["trained_precision"] != "fp16":
        out.append("the teacher did not train in fp16 (AMP) on the GPU")
    return out


def main(argv: list[str]) -> int:
    epochs = int(argv[0]) if argv else 4
    t0 = time.perf_counter()
    result = run(epochs)
    result["wall_s"] = time.perf_counter() - t0
    dev = result["device"]
    print(f"device: {dev['device']} ({dev['device_name']}), torch {dev['framework_version']}")
    print(f"{'model':<17} {'device':<6} {'trained':<7} {'accuracy':>8} {'energy J':>9} {'s':>6}")
    for name, m in result["models"].items():
        print(
            f"{name:<17} {m['device']:<6} {m['trained_precision']:<7} {m['accuracy']:>8.4f} "
            f"{m['energy_j']:>9.2f} {m['duration_s']:>6.2f}"
        )
    print("energy sources: " + ", ".join(f"{k}={v}" for k, v in result["sources"].items()))
    bad = problems(result)
    for line in bad:
        print(f"FAILED: {line}")
    print(MARK + json.dumps(result), flush=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
