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
