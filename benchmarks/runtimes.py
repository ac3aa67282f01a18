"""int8 against float per inference runtime, measured side by side in one run (issue 14).

For each framework, the default KD student (trained briefly on the digits) runs in every
runtime greenpipe makes: the framework itself (torch eager / Keras), ONNX Runtime fp32 and
static int8 (calibrated on 512 train samples; torch's int8 is this one), TFLite int8
(Keras), and AOTInductor (torch). Latency is evaluate's own method (`latency_ms`: p50 after warm-up,
at batch 1 and at batch 32). The ratios: int8 against float in the same runtime, and int8
against its float parent as the framework runs it (the target: >= 2x at batch 32 in at least
one runtime per framework). A wider student (MobileNetV2 x0.25 on 32x32 inputs, the
realistic plan's) shows how the ratios move when layers have more work per call.
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
WARMUP, RUNS, BATCH, TARGET = 20, 200, 32, 2.0


def digits():
    from greenpipe.data.sources import load_digits_images, stratified_split

    x, y = load_digits_images()
    return stratified_split(x, y, 0.15, 0.2, 42)


def variants(name: str, model, calib, with_aoti: bool) -> dict:
    """{label: model} of one float model in every runtime of its framework."""
    from greenpipe.backends import get_backend
    from greenpipe.config import OptimizeConfig

    be = get_backend(name)
    native = "eager" if name == "torch" else "keras"
    out = {f"{native} fp32": model}
    int8 = be.quantize(model, calib, OptimizeConfig(calibration_samples=len(calib)))
    out["onnxruntime fp32"] = be.runtime(model, "onnxruntime", None)
    if name == "torch":  # torch's int8 is ONNX Runtime's static int8
        out["onnxruntime int8"] = int8
    else:
        out["tflite int8"] = int8
        out["onnxruntime int8"] = be.runtime(model, "onnxruntime", calib)
    if with_aoti and name == "torch":
        out["aoti fp32"] = be.runtime(model, "aoti", None)
    return out


def measure(name: str, models: dict, x: np.ndarray, y: np.ndarray | None) -> dict:
    from greenpipe.backends import get_backend
    from greenpipe.evaluate.speed import latency_ms

    be = get_backend(name)
    res = {}
    for label, m in models.items():

        def predict(xb, m=m):
            return be.predict(m, xb, batch_size=max(len(xb), 1))

        r = {
            "b1": latency_ms(predict, x, WARMUP, RUNS)["latency_p50_ms"],
            "bN": latency_ms(predict, x, WARMUP, RUNS, BATCH)["latency_batch_p50_ms"],
        }
        if y is not None:
            r["acc"] = float((be.predict(m, x).argmax(1) == y).mean())
        res[label] = r
    return res


def ratios(name: str, res: dict, workload: str) -> list[tuple]:
    """(label, ratio, target, met) rows: float / int8 latency at batch BATCH."""
    native = "eager fp32" if name == "torch" else "keras fp32"
    rows = []
    # (int8, the float model in its own runtime: none for TFLite)
    pairs = [("onnxruntime int8", "onnxruntime fp32")]
    if name != "torch":
        pairs.insert(0, ("tflite int8", None))
    for int8, same in pairs:
        parent_r = res[native]["bN"] / res[int8]["bN"]
        if same is not None:
            same_r = res[same]["bN"] / res[int8]["bN"]
            rows.append((f"{name} {workload}: {int8} vs {same} (b{BATCH})", same_r, "-", None))
        rows.append(
            (
                f"{name} {workload}: {int8} vs float parent (b{BATCH})",
                parent_r,
                f">= {TARGET}",
                parent_r >= TARGET,
            )
        )
    return rows


def run(name: str, d, workload: str) -> list[tuple]:
    from greenpipe.backends import get_backend
    from greenpipe.config import DistillConfig, FitConfig, ModelArch, ModelSpec

    be = get_backend(name)
    be.seed_everything(0)
    x_tr = d["train"][0]
    if workload == "digits 8x8 cnn":
        model = be.build(DistillConfig().model, x_tr.shape[1:], 10)
        be.fit(model, d, FitConfig(epochs=15, patience=16), desc=f"bench {name}")
        x, y = d["test"]
    else:  # speed only: untrained weights of the realistic plan's student
        spec = ModelSpec(arch="mobilenetv2", cnn=ModelArch())
        spec = spec.model_copy(
            update={
                "mobilenetv2": spec.mobilenetv2.model_copy(
                    update={"width": 0.25, "last_channels": 128}
                )
            }
        )
        x = np.random.default_rng(0).random((512, 32, 32, 1), dtype=np.float32)
        model, y, x_tr = be.build(spec, x.shape[1:], 10), None, x
    models = variants(name, model, x_tr[:512], workload == "digits 8x8 cnn")
    res = measure(name, models, x, y)
    print(
        f"{name}, {workload}: p50 latency (ms) at batch 1 / {BATCH}"
        + (", accuracy" if y is not None else "")
    )
    for label, r in res.items():
        acc = f"  acc {r['acc']:.4f}" if "acc" in r else ""
        print(f"  {label:<18} {r['b1']:>8.3f} {r['bN']:>8.3f}{acc}")
    return ratios(name, res, workload)


def main() -> None:
    d = digits()
    frameworks = ["torch"] + ([] if "--no-tf" in sys.argv else ["tensorflow"])
    rows = []
    for name in frameworks:
        for workload in ("digits 8x8 cnn", "32x32 mobilenetv2"):
            rows += run(name, d, workload)
    for label, value, target, ok in rows:
        verdict = "" if ok is None else ("met" if ok else "missed")
        print(f"{label:<70}{value:>8.2f}x  {target:<6} {verdict}")
    print(json.dumps({"rows": rows}))


if __name__ == "__main__":
    main()
