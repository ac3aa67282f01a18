"""Training precision against fp32, measured side by side in one run (issue 14).

Two workloads, each trained for a fixed number of epochs (no early stopping) in fp32 and in
bf16 (torch CPU autocast; Keras mixed_bfloat16), interleaved over `REPEATS` rounds so drift
in machine load hits both: the default teacher CNN on the augmented 8x8 digits, and a
CIFAR ResNet-20 on the digits enlarged to 32x32 (the realistic plan's teacher, where the
convolutions have work enough for bf16 units to matter; 3 epochs, so its accuracy is not
compared). Wall time, energy (CodeCarbon, gross, J) and test accuracy of each; ratios are
bf16 / fp32 medians. bf16 is flagged when it trains slower: CPUs without native bf16
(AVX512-BF16 or AMX) emulate it.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPEATS = 3
# workload: (architecture, upscale factor, training samples (None: all), epochs)
WORKLOADS = {"digits 8x8 cnn": ("cnn", 1, None, 20), "32x32 resnet-20": ("resnet", 4, None, 3)}


def data(upscale: int, n_train: int | None):
    from greenpipe.config import AugmentConfig
    from greenpipe.data.augment import augment
    from greenpipe.data.sources import load_digits_images, stratified_split, upscaled

    x, y = load_digits_images()
    x = upscaled(x, upscale)  # bilinear, as data.upscale does
    s = stratified_split(x, y, 0.15, 0.2, 42)
    s["train"] = augment(*s["train"], AugmentConfig(), 42)
    if n_train is not None:
        s["train"] = (s["train"][0][:n_train], s["train"][1][:n_train])
    return s


def train(name: str, precision: str, d, arch: str, epochs: int) -> dict:
    from greenpipe.backends import get_backend
    from greenpipe.config import FitConfig, ModelSpec
    from greenpipe.tracking.energy import EnergyMeter

    be = get_backend(name)
    be.seed_everything(0)
    m = be.build(ModelSpec(arch=arch), d["train"][0].shape[1:], 10)
    cfg = FitConfig(epochs=epochs, patience=epochs + 1, precision=precision)
    meter = EnergyMeter("FRA", 1.0, "bench-precision")
    meter.start()
    t0 = time.perf_counter()
    try:
        be.fit(m, d, cfg, desc=f"{name} {precision}")
    finally:
        seconds = time.perf_counter() - t0
        reading = meter.stop()
    acc = float((be.predict(m, d["test"][0]).argmax(1) == d["test"][1]).mean())
    return {"s": seconds, "j": reading.energy_j if reading else float("nan"), "acc": acc}


def main() -> None:
    from greenpipe.backends.torch.loops import bf16_native

    native = bf16_native()
    print(f"CPU has native bf16 (AVX512-BF16/AMX): {native}")
    rows = []
    for workload, (arch, upscale, n_train, epochs) in WORKLOADS.items():
        d = data(upscale, n_train)
        for name in ["torch"] + ([] if "--no-tf" in sys.argv else ["tensorflow"]):
            runs: dict[str, list[dict]] = {"fp32": [], "bf16": []}
            for _ in range(REPEATS):
                for prec in runs:
                    runs[prec].append(train(name, prec, d, arch, epochs))
            rows += compare(f"{name} {workload}", native, runs)
    print(json.dumps({"rows": rows}))


def compare(name: str, native: bool, runs: dict[str, list[dict]]) -> list:
    """The medians of fp32 and bf16 printed, the flag when bf16 trains slower, the rows."""
    med = {
        p: {k: statistics.median(r[k] for r in rs) for k in ("s", "j", "acc")}
        for p, rs in runs.items()
    }
    for p, m in med.items():
        print(f"  {name} {p}: {m['s']:.1f} s, {m['j']:.0f} J, test accuracy {m['acc']:.4f}")
    t_ratio = med["bf16"]["s"] / med["fp32"]["s"]
    j_ratio = med["bf16"]["j"] / med["fp32"]["j"]
    d_acc = med["bf16"]["acc"] - med["fp32"]["acc"]
    slower = t_ratio > 1.0
    if slower:
        why = "no native bf16 units" if not native else "bf16 casts outweigh the work"
        print(f"  FLAG: {name} bf16 trains {t_ratio:.2f}x as long as fp32 ({why})")
    rows = [
        (f"{name}: bf16 / fp32 training time", t_ratio, "< 1", not slower),
        (f"{name}: bf16 / fp32 training energy (J)", j_ratio, "< 1", j_ratio < 1),
    ]
    if med["fp32"]["acc"] < 0.5:  # a few epochs of a ResNet: batch-norm statistics still lag
        print(f"  {name}: accuracy not compared (fp32 still at {med['fp32']['acc']:.2f})")
        return rows
    return [*rows, (f"{name}: bf16 - fp32 test accuracy", d_acc, "> -0.01", d_acc > -0.01)]


if __name__ == "__main__":
    main()
