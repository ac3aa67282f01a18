"""CodeCarbon on a CUDA GPU (marked gpu: skipped without one): NVML's energy counter is seen
to advance, so the GPU's energy is reported as measured, not assumed."""

from __future__ import annotations

import time

import pytest

pytestmark = pytest.mark.gpu


def test_the_nvml_energy_counter_is_observed_under_load():
    import torch

    from greenpipe.tracking.energy import EnergyMeter

    meter = EnergyMeter("FRA", 0.5, "gpu-check")
    meter.start()
    a = torch.randn(4096, 4096, device="cuda")
    with meter.task("matmul") as box:
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < 3.0:
            a = torch.tanh(a @ a)
        torch.cuda.synchronize()
    total = meter.stop()
    assert total is not None and box["reading"].gpu_j > 0
    assert meter.sources()["gpu"] == "measured:nvml_energy_counter"
