"""torch on a CUDA GPU (marked gpu: skipped without one): mixed-precision training, NCCL's
all-reduce, the determinism switch, more processes than GPUs, and where models run."""

from __future__ import annotations

import numpy as np
import pytest

from greenpipe.config import FitConfig, ModelArch, ModelSpec, ResNetArch
from greenpipe.errors import GreenpipeError

pytestmark = pytest.mark.gpu
SHAPE, CLASSES = (8, 8, 1), 3
CNN = ModelSpec(cnn=ModelArch(channels=(8, 16), hidden=32, dropout=0.0))


def _data(n: int = 240, seed: int = 0) -> dict:
    """A bright 4x4 quadrant per class on noise: learnt in a few epochs."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, CLASSES, n).astype(np.int64)
    x = rng.uniform(0.0, 0.3, (n, *SHAPE)).astype(np.float32)
    for i, c in enumerate(y):
        r, col = divmod(int(c), 2)
        x[i, 4 * r : 4 * r + 4, 4 * col : 4 * col + 4, 0] += 0.6
    return {"train": (x[:180], y[:180]), "val": (x[180:], y[180:])}


@pytest.fixture(scope="module")
def be():
    from greenpipe.backends import get_backend

    return get_backend("torch")


def test_amp_trains_in_fp16_on_cuda_and_keeps_fp32_weights(be):
    import torch

    be.seed_everything(0)
    model = be.build(CNN, SHAPE, CLASSES)
    seen = []
    model.layers["conv0"].register_forward_hook(lambda _m, _i, out: seen.append(out.dtype))
    hist = be.fit(model, _data(), FitConfig(epochs=6, batch_size=30, lr=0.01), desc="amp")
    assert be.device()["device"] == "cuda" and next(model.parameters()).is_cuda
    assert torch.float16 in seen and model.meta["trained_precision"] == "fp16"
    assert next(model.parameters()).dtype is torch.float32
    assert hist.best["val_acc"] > 0.9


def test_nccl_all_sum_on_one_rank(tmp_path):
    import torch
    import torch.distributed as dist

    from greenpipe.backends.torch import distributed as ddp

    torch.cuda.set_device(0)
    dist.init_process_group(
        "nccl", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1
    )
    try:
        assert ddp.reduce_device() == torch.device("cuda", 0)
        assert ddp.all_sum(2.5) == 2.5
    finally:
        dist.destroy_process_group()


def test_more_processes_than_gpus_is_refused_before_torchrun_starts():
    import torch

    from greenpipe.backends.torch import distributed as ddp
    from greenpipe.config import ConfigError

    n = torch.cuda.device_count()
    ddp.check_nproc(n)
    with pytest.raises(ConfigError, match=f"train.nproc is {n + 1} but {n} GPU"):
        ddp.check_nproc(n + 1)


def _weights(model) -> np.ndarray:
    import torch

    return torch.cat([p.detach().flatten().float().cpu() for p in model.parameters()]).numpy()


def test_strict_determinism_repeats_bit_for_bit_and_names_an_op_without_a_kernel(be):
    cfg = FitConfig(epochs=3, batch_size=30, lr=0.01, precision="fp32", deterministic=True)
    runs = []
    for _ in range(2):
        be.seed_everything(1)
        model = be.build(CNN, SHAPE, CLASSES)
        be.fit(model, _data(), cfg, desc="strict")
        runs.append(_weights(model))
    assert np.array_equal(runs[0], runs[1])
    # global average pooling's backward pass has no deterministic CUDA kernel
    resnet = ModelSpec(arch="resnet", resnet=ResNetArch(depth=8, width=4))
    be.seed_everything(1)
    with pytest.raises(GreenpipeError, match="adaptive_avg_pool2d_backward_cuda has no determ"):
        be.fit(be.build(resnet, SHAPE, CLASSES), _data(), cfg, desc="strict resnet")
    fast = cfg.model_copy(update={"deterministic": False})
    be.seed_everything(1)
    hist = be.fit(be.build(resnet, SHAPE, CLASSES), _data(), fast, desc="fast resnet")
    assert len(hist.epochs) == 3


def test_float_models_run_on_cuda_and_int8_on_the_cpu(be):
    from greenpipe.config import OptimizeConfig

    be.seed_everything(0)
    model = be.build(CNN, SHAPE, CLASSES)
    x = _data()["train"][0]
    assert be.device_of(model) == "cuda"
    q = be.quantize(model, x, OptimizeConfig(calibration_samples=32))
    assert be.device_of(q) == "cpu" and be.predict(q, x[:8]).shape == (8, CLASSES)
    # exporting worked on a CPU copy: the float model is still on its GPU, and still runs
    assert next(model.parameters()).is_cuda and be.predict(model, x[:8]).shape == (8, CLASSES)
