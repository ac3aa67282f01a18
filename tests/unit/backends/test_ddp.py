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
    model = be.build(ModelSpec(cnn=ModelArch(channels=(4, 8), hidden=16, dropout=0.0)), (8, 8, 1), 3)
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
