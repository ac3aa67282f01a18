"""greenpipe.backends.tensorflow: what only the Keras/TFLite backend does (TFLite's
converter, Keras archives). The contract both backends keep is in test_contract.py."""

from __future__ import annotations

import json
import re
import zipfile

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from greenpipe.backends import get_backend  # noqa: E402
from greenpipe.config import ModelArch, ModelSpec, OptimizeConfig  # noqa: E402
from greenpipe.errors import GreenpipeError  # noqa: E402

SHAPE, CLASSES = (8, 8, 1), 3
TINY = ModelSpec(cnn=ModelArch(channels=(8,), hidden=16, dropout=0.2))


@pytest.fixture(scope="module")
def be():
    return get_backend("tensorflow")


@pytest.fixture(scope="module")
def model(be):
    be.seed_everything(0)
    return be.build(TINY, SHAPE, CLASSES)


# --- TFLite ---------------------------------------------------------------------------------


def test_static_conversion_falls_back_to_float_io_then_fails_in_one_line(monkeypatch):
    from greenpipe.backends.tensorflow import quantize

    calls = []

    class FakeConverter:
        def __init__(self, int8_io: bool, ok: bool) -> None:
            self.int8_io, self.ok = int8_io, ok

        def convert(self) -> bytes:
            calls.append(self.int8_io)
            if self.int8_io or not self.ok:
                raise RuntimeError("unsupported op\n  at line 1")
            return b"flatbuffer"

    monkeypatch.setattr(quantize, "_converter", lambda m, x, mode, io: FakeConverter(io, True))
    assert quantize.convert(None, None, "static") == b"flatbuffer" and calls == [True, False]
    monkeypatch.setattr(quantize, "_converter", lambda m, x, mode, io: FakeConverter(io, False))
    with pytest.raises(GreenpipeError, match="RuntimeError: unsupported op at line 1.*dynamic"):
        quantize.convert(None, None, "static")


def test_a_tflite_model_keeps_the_float_param_count_and_is_not_quantized_again(be, model):
    """The flatbuffer has no trainable weights to count: the float model's count travels in
    `.meta`."""
    x = np.random.default_rng(0).random((32, *SHAPE), dtype=np.float32)
    qm = be.quantize(model, x, OptimizeConfig(quantization="dynamic"))
    assert qm.meta["params"] == be.count_params(qm) == be.count_params(model)
    with pytest.raises(GreenpipeError, match="already int8"):
        be.quantize(qm, x, OptimizeConfig())


# --- Keras archives -------------------------------------------------------------------------


def test_keras_archives_hold_no_save_time_or_object_ids(be, model, tmp_path):
    """What makes a `.keras` file a function of the model alone (test_contract.py checks
    the bytes across processes), under any name."""
    path = tmp_path / "m.model"
    be.save(model, path)
    assert path.read_bytes()[:2] == b"PK"
    with zipfile.ZipFile(path) as zf:
        assert {info.date_time for info in zf.infolist()} == {(1980, 1, 1, 0, 0, 0)}
        assert "date_saved" not in json.loads(zf.read("metadata.json"))
        ids = re.findall(r'"shared_object_id": (\d+)', zf.read("config.json").decode())
    assert ids and {int(i) for i in ids} <= set(range(1, 10))


def test_loading_a_bad_tflite_file_raises_one_line(be, tmp_path):
    path = tmp_path / "bad.tflite"
    path.write_bytes(b"\0\0\0\0TFL3garbage")  # the TFLite file identifier, then nothing
    with pytest.raises(GreenpipeError, match="TFLite file.*re-run the stage") as err:
        be.load(path)
    assert "bad.tflite" in str(err.value) and "\n" not in str(err.value)


def test_a_model_built_under_mixed_float16_still_quantizes_to_full_int8(be):
    """The TFLite converter cannot lower a mixed_float16 model's float16 casts in full-integer
    mode ("Could not translate MLIR to FlatBuffer"): quantize converts a float32 copy."""
    import keras

    rng = np.random.default_rng(0)
    be.seed_everything(0)
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        mixed = be.build(TINY, SHAPE, CLASSES)  # as a user's model built under the policy
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert mixed.layers[1].compute_dtype == "float16"
    x = rng.random((32, *SHAPE), dtype=np.float32)
    q = be.quantize(mixed, x, OptimizeConfig(calibration_samples=16, quantization="static"))
    assert q.interpreter.get_input_details()[0]["dtype"] == np.int8
    ref = be.predict(mixed, x)
    assert (be.predict(q, x).argmax(1) == ref.argmax(1)).mean() > 0.8


# --- GPU set-up, without a GPU ----------------------------------------------------------------


class _FakeConfig:
    """tf.config's GPU listing and memory-growth switch, recording what was asked."""

    def __init__(self, gpus):
        self.gpus, self.grown = gpus, []
        self.experimental = self

    def list_physical_devices(self, kind):
        return list(self.gpus) if kind == "GPU" else []

    def set_memory_growth(self, gpu, on):
        self.grown.append((gpu, on))


def test_every_gpu_gets_memory_growth_so_other_processes_keep_some_memory():
    from greenpipe.backends.tensorflow import grow_gpu_memory

    config = _FakeConfig(["GPU:0", "GPU:1"])
    assert grow_gpu_memory(config) == ["GPU:0", "GPU:1"]
    assert config.grown == [("GPU:0", True), ("GPU:1", True)]
    assert grow_gpu_memory(_FakeConfig([])) == []


def test_a_backend_with_a_gpu_grows_its_memory_and_builds_float32_models(monkeypatch):
    """On a GPU the backend used to set Keras' global policy to mixed_float16, so every model
    it built (and saved, and quantized) was mixed; precision is the fit's business."""
    import keras
    import tensorflow as tf

    from greenpipe.backends.tensorflow import TensorFlowBackend

    fake = _FakeConfig(["GPU:0"])
    monkeypatch.setattr(tf.config, "list_physical_devices", fake.list_physical_devices)
    monkeypatch.setattr(tf.config.experimental, "set_memory_growth", fake.set_memory_growth)
    monkeypatch.setattr(tf.config.experimental, "get_device_details", lambda g: {})
    gpu_be = TensorFlowBackend()
    assert fake.grown == [("GPU:0", True)]
    assert keras.mixed_precision.global_policy().name == "float32"
    gpu_be.seed_everything(0)
    assert gpu_be.build(TINY, SHAPE, CLASSES).layers[1].compute_dtype == "float32"
    assert gpu_be.device_of(gpu_be.build(TINY, SHAPE, CLASSES)) == "gpu"


def test_a_strict_fit_turns_tensorflows_missing_kernel_error_into_one_line():
    import tensorflow as tf
    from tensorflow.python.framework import config

    from greenpipe.backends.tensorflow.loops import kernels

    config.disable_op_determinism()
    why = "Deterministic GPU implementation of unsorted segment reduction op not available."
    with pytest.raises(GreenpipeError, match="no deterministic kernel") as e, kernels(True):
        assert config.is_op_determinism_enabled()
        raise tf.errors.UnimplementedError(None, None, why)
    assert why in str(e.value) and "deterministic: false" in str(e.value)
    assert not config.is_op_determinism_enabled()  # the previous setting is back
    with kernels(False):
        assert not config.is_op_determinism_enabled()
    with pytest.raises(tf.errors.UnimplementedError), kernels(True):  # other errors pass
        raise tf.errors.UnimplementedError(None, None, "no such op")
