"""PyTorch model files are a function of the model alone: the same weights give the same bytes
in every process (DVC hashes them, and `greenpipe verify` compares them)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import sys
    from greenpipe.backends.torch import TorchBackend
    from greenpipe.config import ModelArch, ModelSpec
    be = TorchBackend()
    be.seed_everything(3)
    model = be.build(ModelSpec(cnn=ModelArch(channels=(4, 8), hidden=16)), (8, 8, 1), 3)
    be.save(model, sys.argv[1])
    """
)


def test_same_model_same_bytes_across_processes(tmp_path):
    script = tmp_path / "save.py"
    script.write_text(SCRIPT)
    for name, seed in (("a.model", "1"), ("b.model", "2")):
        env = {"PYTHONHASHSEED": seed, "PATH": ""}
        subprocess.run(
            [sys.executable, str(script), str(tmp_path / name)],
            check=True,
            env=env,
            capture_output=True,
            timeout=120,
        )
    assert (tmp_path / "a.model").read_bytes() == (tmp_path / "b.model").read_bytes()
    from greenpipe.backends.torch import TorchBackend

    loaded = TorchBackend().load(tmp_path / "a.model")
    assert loaded.meta["n_classes"] == 3


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
