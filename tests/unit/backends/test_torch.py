"""greenpipe.backends.torch: what only the PyTorch backend does. The contract both backends
keep is in test_contract.py."""

from __future__ import annotations


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
