"""Data-parallel training: two CPU processes with gloo under torchrun match single-process
training within floating-point tolerance."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np
    import torch
    from greenpipe.backends.torch import TorchBackend, distributed as ddp
    from greenpipe.config import FitConfig, ModelArch, ModelSpec

    ddp.init()
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 240)
    x = rng.random((240, 8, 8, 1), dtype=np.float32) * 0.3
    for c in range(3):  # a bright quadrant per class: learnable in a few epochs
        x[y == c, (c // 2) * 4:(c // 2) * 4 + 4, (c % 2) * 4:(c % 2) * 4 + 4, 0] += 0.7
    data = {"train": (x[:180], y[:180]), "val": (x[180:], y[180:])}
    be = TorchBackend()
    be.seed_everything(7)
    spec = ModelSpec(cnn=ModelArch(channels=(4, 8), hidden=16, dropout=0.0))
    model = be.build(spec, (8, 8, 1), 3)
    hist = be.fit(model, data, FitConfig(epochs=3, batch_size=30, lr=0.01, patience=5), "t")
    if ddp.is_main():
        flat = torch.cat([p.detach().flatten() for p in model.parameters()]).numpy()
        np.savez(sys.argv[1], w=flat, val_loss=[e["val_loss"] for e in hist.epochs],
                 world=ddp.world())
    ddp.finish()
    """
)


def _run(args: list[str], tmp_path) -> None:
    proc = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.mark.timeout(300)
def test_two_gloo_processes_match_single_process(tmp_path):
    script = tmp_path / "fit.py"
    script.write_text(SCRIPT)
    _run([sys.executable, str(script), str(tmp_path / "one.npz")], tmp_path)
    _run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node=2",
            str(script),
            str(tmp_path / "two.npz"),
        ],
        tmp_path,
    )
    one, two = np.load(tmp_path / "one.npz"), np.load(tmp_path / "two.npz")
    assert int(one["world"]) == 1 and int(two["world"]) == 2
    np.testing.assert_allclose(two["w"], one["w"], rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(two["val_loss"], one["val_loss"], rtol=1e-3)
    assert not np.array_equal(one["w"], np.zeros_like(one["w"]))


def test_a_ranks_gpu_is_its_local_rank_not_its_global_rank():
    from greenpipe.backends.torch import distributed as ddp

    # torchrun on the second of two 4-GPU nodes: global rank 5 is GPU 1 of its node
    assert ddp.local_rank({"RANK": "5", "LOCAL_RANK": "1", "WORLD_SIZE": "8"}) == 1
    assert ddp.local_rank({}) == 0


def test_more_processes_than_visible_gpus_is_a_one_line_config_error(monkeypatch):
    from greenpipe.backends.torch import distributed as ddp
    from greenpipe.config import ConfigError

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    with pytest.raises(ConfigError, match=r"train.nproc is 4 but 2 GPU\(s\) are visible") as e:
        ddp.check_nproc(4, gpus=2)
    assert "CUDA_VISIBLE_DEVICES=0,1" in str(e.value) and "\n" not in str(e.value)
    ddp.check_nproc(2, gpus=2)
    ddp.check_nproc(8, gpus=0)  # no GPU: gloo runs any number of CPU processes


def test_all_sum_reduces_on_the_device_of_the_process_groups_backend(monkeypatch):
    """NCCL reduces only CUDA tensors (this rank's GPU), gloo CPU ones; a one-rank group
    still reduces (the GPU test runs NCCL itself)."""
    import torch
    import torch.distributed as dist

    from greenpipe.backends.torch import distributed as ddp

    monkeypatch.setattr(torch.cuda, "current_device", lambda: 1)
    monkeypatch.setattr(dist, "get_backend", lambda *a: "nccl")
    assert ddp.reduce_device() == torch.device("cuda", 1)
    monkeypatch.undo()
    dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    try:
        seen = []
        real = dist.all_reduce
        monkeypatch.setattr(dist, "all_reduce", lambda t, *a, **k: seen.append(t) or real(t))
        assert ddp.reduce_device() == torch.device("cpu")
        assert ddp.all_sum(2.5) == 2.5 and seen[0].device.type == "cpu"
    finally:
        dist.destroy_process_group()
