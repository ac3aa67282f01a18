"""greenpipe.backends.torch: what only the PyTorch backend does. The contract both backends
keep is in test_contract.py."""

from __future__ import annotations

import pytest


def test_loading_a_model_leaves_torchs_random_generator_alone(tmp_path):
    """Only building a model seeds torch; loading one must not reset the generator a stage
    is drawing from (dropout, shuffles)."""
    import torch

    from greenpipe.backends.torch import TorchBackend
    from greenpipe.config import ModelArch, ModelSpec

    be = TorchBackend()
    be.seed_everything(3)
    be.save(
        be.build(ModelSpec(cnn=ModelArch(channels=(4,), hidden=8)), (8, 8, 1), 3), tmp_path / "m"
    )
    torch.manual_seed(123)
    torch.rand(5)
    expected = torch.rand(5)
    torch.manual_seed(123)
    torch.rand(5)
    be.load(tmp_path / "m")
    assert torch.equal(torch.rand(5), expected)


def test_importing_the_backend_hides_no_determinism_warning():
    """A global filter once hid every 'does not have a deterministic implementation'
    warning, so a GPU fit could run nondeterministic kernels without a word. In a fresh
    process: pytest restores the warning filters after each test."""
    import subprocess
    import sys

    code = (
        "import warnings, greenpipe.backends.torch\n"
        "print([f[1].pattern for f in warnings.filters if f[1] is not None])"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "determinis" not in proc.stdout


def test_the_cublas_workspace_is_set_before_any_gpu_work(monkeypatch):
    """cuBLAS reads CUBLAS_WORKSPACE_CONFIG when it starts (the first matrix product on a
    GPU): the backend sets it when it is made, before any model is built or loaded."""
    import os

    from greenpipe.backends.torch import TorchBackend

    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    TorchBackend()
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", ":16:8")  # the user's own choice stays
    TorchBackend()
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":16:8"


def _split(n: int, seed: int = 0):
    import numpy as np

    rng = np.random.default_rng(seed)
    return rng.random((n, 8, 8, 1), dtype=np.float32), rng.integers(0, 3, n)


def test_an_epoch_reads_its_loss_from_the_device_once_not_once_per_batch(monkeypatch):
    """`.item()` waits for the GPU: one per epoch (train) and one per val pass, whatever the
    number of batches."""
    import os
    import sys

    import torch

    from greenpipe.backends import get_backend
    from greenpipe.config import FitConfig, ModelArch, ModelSpec

    be = get_backend("torch")
    be.seed_everything(0)
    model = be.build(ModelSpec(cnn=ModelArch(channels=(4,), hidden=8)), (8, 8, 1), 3)
    calls, real = [], torch.Tensor.item

    def item(t):  # counted where greenpipe's loop calls it (Adam reads its CPU step counter)
        if sys._getframe(1).f_code.co_filename.endswith(os.path.join("torch", "loops.py")):
            calls.append(t.shape)
        return real(t)

    monkeypatch.setattr(torch.Tensor, "item", item)
    data = {"train": _split(128), "val": _split(64, 1)}
    be.fit(model, data, FitConfig(epochs=2, batch_size=8, patience=5), desc="t")  # 16 batches
    assert 0 < len(calls) <= 2 * 3, len(calls)


class _PutModel:
    """A module whose forward pass calls `put_`, which has no deterministic CPU kernel."""

    def __new__(cls):
        import torch
        from torch import nn

        class PutNet(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(64, 3)

            def forward(self, x):
                z = self.fc(x.flatten(1))
                return z.clone().put_(torch.tensor([0]), torch.tensor([0.0]))

        return PutNet()


def test_a_strict_fit_names_the_op_without_a_deterministic_kernel_and_a_fast_one_runs():
    import torch
    import torch.nn.functional as F

    from greenpipe.backends.torch.loops import train_loop
    from greenpipe.config import FitConfig
    from greenpipe.errors import GreenpipeError

    data = {"train": _split(32), "val": _split(16, 1)}

    def ce(logits, _aux, y):
        return F.cross_entropy(logits, y)

    strict = FitConfig(epochs=1, batch_size=16, patience=1, deterministic=True)
    with pytest.raises(GreenpipeError, match=r"^put_ has no deterministic kernel on cpu.*"):
        train_loop(_PutModel(), data, strict, torch.device("cpu"), 0, "t", ce)
    assert not torch.are_deterministic_algorithms_enabled()  # the previous setting is back
    fast = strict.model_copy(update={"deterministic": False})
    hist = train_loop(_PutModel(), data, fast, torch.device("cpu"), 0, "t", ce)
    assert len(hist.epochs) == 1


def test_exporting_leaves_the_callers_model_where_and_as_it_was():
    """The exporters work on a CPU copy: `model.cpu().eval()` moved a GPU model to the CPU
    (the optimize stage then evaluated a CPU model with GPU inputs) and out of train mode."""
    from greenpipe.backends import get_backend
    from greenpipe.backends.torch import export
    from greenpipe.config import ModelArch, ModelSpec

    be = get_backend("torch")
    be.seed_everything(0)
    model = be.build(ModelSpec(cnn=ModelArch(channels=(4,), hidden=8)), (8, 8, 1), 3)
    model.train()
    before = next(model.parameters())
    assert export.to_onnx(model)[:2]  # serialised ONNX bytes
    assert model.training and next(model.parameters()) is before
