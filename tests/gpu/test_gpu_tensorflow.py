"""TensorFlow on a CUDA GPU (marked gpu; skipped without one, and where TensorFlow is not
installed, as on the bare machine of `make gpu-check`): memory taken as needed, so that a
second process still finds some; mixed float16 training; full int8 from it."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.gpu
tf = pytest.importorskip("tensorflow")


@pytest.fixture(scope="module")
def be():
    from greenpipe.backends import get_backend

    backend = get_backend("tensorflow")
    if backend.device()["device"] != "gpu":
        pytest.skip("TensorFlow sees no GPU: a CPU-only build (tensorflow-cpu)?")
    return backend


def test_every_gpu_grows_its_memory_and_another_process_still_gets_some(be, tmp_path):
    import subprocess
    import sys

    gpus = tf.config.list_physical_devices("GPU")
    assert gpus and all(tf.config.experimental.get_memory_growth(g) for g in gpus)
    tf.constant([1.0]) + 1  # TensorFlow has started on the GPU
    code = "import torch; x = torch.ones(256, 1024, 1024, device='cuda'); print(x.sum().item())"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_fp16_training_then_full_int8(be):
    from greenpipe.config import FitConfig, ModelArch, ModelSpec, OptimizeConfig

    rng = np.random.default_rng(0)
    x = rng.random((120, 8, 8, 1), dtype=np.float32)
    y = rng.integers(0, 3, 120)
    be.seed_everything(0)
    model = be.build(ModelSpec(cnn=ModelArch(channels=(8,), hidden=16)), (8, 8, 1), 3)
    data = {"train": (x, y), "val": (x, y)}
    be.fit(model, data, FitConfig(epochs=1, precision="auto", deterministic=False), desc="t")
    assert model.meta["trained_precision"] == "fp16" and model.dtype_policy.name == "float32"
    q = be.quantize(model, x, OptimizeConfig(calibration_samples=32, quantization="static"))
    assert q.interpreter.get_input_details()[0]["dtype"] == np.int8
