"""Training precision (issue 14): the dtype each setting resolves to, fp16 refused on the
CPU in one line, and a Keras model trained under mixed_bfloat16 staying float32 with the
trained weights."""

from __future__ import annotations

import numpy as np
import pytest

from greenpipe.config import ConfigError, FitConfig


def test_torch_precision_resolves_per_device():
    import torch

    from greenpipe.backends.torch.loops import autocast_dtype

    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert autocast_dtype("fp32", cpu) is None and autocast_dtype("auto", cpu) is None
    assert autocast_dtype("bf16", cpu) is torch.bfloat16
    assert autocast_dtype("auto", cuda) is torch.float16
    with pytest.raises(ConfigError, match="fp16 needs a CUDA GPU; use bf16"):
        autocast_dtype("fp16", cpu)


def test_torch_bf16_training_runs_the_forward_pass_in_bf16():
    from greenpipe.backends import get_backend
    from greenpipe.config import DistillConfig

    be = get_backend("torch")
    be.seed_everything(0)
    m = be.build(DistillConfig().model, (8, 8, 1), 10)
    seen = []
    m.layers["conv0"].register_forward_hook(lambda _m, _i, out: seen.append(out.dtype))
    rng = np.random.default_rng(0)
    split = (rng.random((64, 8, 8, 1), dtype=np.float32), rng.integers(0, 10, 64))
    data = {"train": split, "val": split}
    be.fit(m, data, FitConfig(epochs=1, patience=2, precision="bf16"), desc="t")
    import torch

    assert torch.bfloat16 in seen  # training steps
    assert next(m.parameters()).dtype is torch.float32  # the weights stay fp32


def test_keras_bf16_trains_a_mixed_clone_and_keeps_a_float32_model():
    from greenpipe.backends import get_backend
    from greenpipe.backends.tensorflow.precision import policy_of, trained_in
    from greenpipe.config import DistillConfig

    assert policy_of("bf16", gpu=False) == "mixed_bfloat16"
    assert policy_of("auto", gpu=False) == "float32"
    with pytest.raises(ConfigError, match="fp16 needs a GPU"):
        policy_of("fp16", gpu=False)
    be = get_backend("tensorflow")
    be.seed_everything(0)
    m = be.build(DistillConfig().model, (8, 8, 1), 10)
    before = [w.copy() for w in m.get_weights()]
    with trained_in(m, "mixed_bfloat16") as clone:
        assert clone is not m and clone.layers[1].compute_dtype == "bfloat16"
        clone.set_weights([w + 1 for w in clone.get_weights()])
    assert m.dtype_policy.name == "float32"
    np.testing.assert_allclose(m.get_weights()[0], before[0] + 1)


@pytest.mark.parametrize("framework", ["torch", "tensorflow"])
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_a_model_records_the_precision_it_was_trained_in(framework, precision, tmp_path):
    """The model file keeps its training precision, and evaluate's description (what the
    report's "trained in" column and labels show) reads it back; so does an int8 child."""
    from greenpipe import artifacts
    from greenpipe.backends import get_backend
    from greenpipe.config import DistillConfig, OptimizeConfig
    from greenpipe.evaluate.runtime import describe

    be = get_backend(framework)
    be.seed_everything(0)
    m = be.build(DistillConfig().model, (8, 8, 1), 10)
    assert "trained_precision" not in m.meta  # not trained yet
    rng = np.random.default_rng(0)
    split = (rng.random((32, 8, 8, 1), dtype=np.float32), rng.integers(0, 10, 32))
    be.fit(m, {"train": split, "val": split}, FitConfig(epochs=1, precision=precision), "t")
    path = tmp_path / "m.model"
    artifacts.save_model(be, m, path)
    loaded = be.load(path)
    assert describe(framework, loaded.meta)["trained_precision"] == precision
    q = be.quantize(loaded, split[0], OptimizeConfig())
    assert describe(framework, q.meta) == {
        "runtime": {"torch": "onnxruntime", "tensorflow": "tflite"}[framework],
        "precision": "int8",
        "trained_precision": precision,
    }
