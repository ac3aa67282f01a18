"""Training throughput: greenpipe's backends against minimal bare loops, and CodeCarbon's cost.

Same model, batch size, data and epochs, measured side by side in one process:
- PyTorch: TorchBackend.fit against a bare `for xb, yb in batches: step` loop;
- TensorFlow: TensorFlowBackend.fit against a bare Keras `model.fit`;
- CodeCarbon: TorchBackend.fit with an EnergyMeter running against without.
Each pair is interleaved over `REPEATS` rounds and the medians are compared.
Targets: >= 0.95 of the bare loop for both frameworks; >= 0.98 with CodeCarbon running.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPEATS, EPOCHS, BATCH = 5, 20, 64
CC_EPOCHS = 30  # CodeCarbon samples once a second: the runs must be long enough to see it


def data():
    from greenpipe.config import AugmentConfig
    from greenpipe.data.augment import augment
    from greenpipe.data.sources import load_digits_images, stratified_split

    x, y = load_digits_images()
    s = stratified_split(x, y, 0.15, 0.2, 42)
    s["train"] = augment(*s["train"], AugmentConfig(), 42)
    return s


def cfg(epochs: int):
    from greenpipe.config import FitConfig

    return FitConfig(epochs=epochs, batch_size=BATCH, lr=1e-3, patience=epochs + 1)


def greenpipe_fit(name: str, d, epochs: int = EPOCHS) -> float:
    from greenpipe.backends import get_backend
    from greenpipe.config import ModelSpec

    be = get_backend(name)
    be.seed_everything(0)
    m = be.build(ModelSpec(), d["train"][0].shape[1:], 10)  # the default teacher CNN
    t0 = time.perf_counter()
    be.fit(m, d, cfg(epochs), desc="bench")
    return epochs * len(d["train"][1]) / (time.perf_counter() - t0)


def bare_torch(d) -> float:
    import torch
    import torch.nn.functional as F

    from greenpipe.architectures.zoo import graph_of
    from greenpipe.backends.torch.models import GraphNet
    from greenpipe.config import ModelSpec

    torch.manual_seed(0)
    shape = d["train"][0].shape[1:]
    m = GraphNet(graph_of(ModelSpec(), shape, 10), shape)
    x = torch.from_numpy(np.ascontiguousarray(d["train"][0].transpose(0, 3, 1, 2)))
    y = torch.from_numpy(d["train"][1])
    opt = torch.optim.Adam(m.parameters(), lr=1e-3)
    t0 = time.perf_counter()
    for _ in range(EPOCHS):
        m.train()
        perm = torch.randperm(len(x))
        for i in range(0, len(x), BATCH):
            idx = perm[i : i + BATCH]
            opt.zero_grad()
            F.cross_entropy(m(x[idx]), y[idx]).backward()
            opt.step()
    return EPOCHS * len(y) / (time.perf_counter() - t0)


def bare_keras(d) -> float:
    import keras

    from greenpipe.architectures.zoo import graph_of
    from greenpipe.backends.tensorflow.models import build_graph
    from greenpipe.config import ModelSpec

    keras.utils.set_random_seed(0)
    shape = d["train"][0].shape[1:]
    m = build_graph(graph_of(ModelSpec(), shape, 10), shape)
    m.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    x, y = d["train"]
    t0 = time.perf_counter()
    m.fit(x, y, batch_size=BATCH, epochs=EPOCHS, verbose=0, shuffle=True)
    return EPOCHS * len(y) / (time.perf_counter() - t0)


def with_codecarbon(d) -> float:
    from greenpipe.tracking.energy import EnergyMeter

    meter = EnergyMeter("FRA", 1.0, "bench")  # the default tracking.measure_power_secs
    meter.start()
    try:
        return greenpipe_fit("torch", d, CC_EPOCHS)
    finally:
        meter.stop()


def compare(label: str, ours, bare, target: float) -> tuple:
    a, b = [], []
    for _ in range(REPEATS):  # interleaved, so drift in machine load hits both sides
        a.append(ours())
        b.append(bare())
    ratio = statistics.median(a) / statistics.median(b)
    return label, statistics.median(a), statistics.median(b), ratio, target


def main() -> None:
    d = data()
    rows = [
        compare(
            "torch: greenpipe fit / bare loop",
            lambda: greenpipe_fit("torch", d),
            lambda: bare_torch(d),
            0.95,
        )
    ]
    if "--no-tf" not in sys.argv:
        rows.append(
            compare(
                "tensorflow: greenpipe fit / bare keras fit",
                lambda: greenpipe_fit("tensorflow", d),
                lambda: bare_keras(d),
                0.95,
            )
        )
    rows.append(
        compare(
            "torch: with CodeCarbon / without",
            lambda: with_codecarbon(d),
            lambda: greenpipe_fit("torch", d, CC_EPOCHS),
            0.98,
        )
    )
    print(f"{'comparison':<46}{'ours /s':>10}{'ref /s':>10}{'ratio':>8}{'target':>8}")
    for label, ours, ref, ratio, target in rows:
        print(f"{label:<46}{ours:>10.0f}{ref:>10.0f}{ratio:>8.3f}{target:>8.2f}")
    summary = [
        (f"{label} (samples/s ratio)", ratio, f">= {target}", ratio >= target)
        for label, _, _, ratio, target in rows
    ]
    print(json.dumps({"rows": summary}))


if __name__ == "__main__":
    main()
