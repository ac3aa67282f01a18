"""int8 post-training quantization through the TFLite converter, and the int8 model object.

static: full-integer quantization (int8 weights and activations, int8 input and output
tensors) calibrated on a representative dataset. dynamic: dynamic-range quantization (int8
weights, activations quantized on the fly, float input and output); the converter leaves
tensors under 1,024 elements (e.g. a first conv with one input channel) in float.

The model's `.meta` travels inside the flatbuffer as a TFLite metadata entry (`META_NAME`,
JSON), so a quantized model is one self-describing `.tflite` file.
"""

from __future__ import annotations

import contextlib
import io
import json
import warnings
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from tensorflow.lite.python import schema_py_generated as schema
from tensorflow.lite.tools import flatbuffer_utils

from greenpipe.errors import GreenpipeError

META_NAME = "greenpipe_meta"


def _interpreter(flatbuffer: bytes):
    # tf.lite.Interpreter is deprecated in favour of LiteRT; use LiteRT when it is installed.
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        Interpreter = tf.lite.Interpreter  # noqa: N806
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Interpreter(model_content=flatbuffer)


class TFLiteModel:
    """An int8 TFLite model: the flatbuffer (meta embedded), one reused interpreter, `.meta`.

    Calling it runs one batch; the interpreter is resized only when the batch size changes.
    """

    def __init__(self, flatbuffer: bytes, meta: dict[str, Any]) -> None:
        self.flatbuffer, self.meta = flatbuffer, meta
        self.interpreter = _interpreter(flatbuffer)
        self._in = self.interpreter.get_input_details()[0]
        self._out = self.interpreter.get_output_details()[0]
        self._batch: int | None = None

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Float32 logits (N, classes) for images `x` (N, H, W, C) in [0, 1]."""
        if len(x) != self._batch:
            self.interpreter.resize_tensor_input(self._in["index"], [len(x), *x.shape[1:]])
            self.interpreter.allocate_tensors()
            self._batch = len(x)
        self.interpreter.set_tensor(self._in["index"], self._to_input(x))
        self.interpreter.invoke()
        out = self.interpreter.get_tensor(self._out["index"])
        if self._out["dtype"] == np.int8:
            scale, zero = self._out["quantization"]
            return ((out.astype(np.float32) - zero) * scale).astype(np.float32)
        return out.astype(np.float32, copy=False)

    def _to_input(self, x: np.ndarray) -> np.ndarray:
        if self._in["dtype"] != np.int8:
            return np.ascontiguousarray(x, dtype=np.float32)
        scale, zero = self._in["quantization"]
        return np.clip(np.round(x / scale + zero), -128, 127).astype(np.int8)


def _converter(model: keras.Model, calib_x: np.ndarray, mode: str, int8_io: bool):
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    if mode == "static":
        calib = np.asarray(calib_x, dtype=np.float32)
        conv.representative_dataset = lambda: ([calib[i : i + 1]] for i in range(len(calib)))
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if int8_io:
            conv.inference_input_type = conv.inference_output_type = tf.int8
    return conv


def convert(model: keras.Model, calib_x: np.ndarray, mode: str) -> bytes:
    """The int8 TFLite flatbuffer of `model` ("static" or "dynamic").

    Static asks for int8 input/output tensors and falls back to float I/O (still int8
    inside) if the converter refuses.
    """
    last: Exception | None = None
    for int8_io in (True, False) if mode == "static" else (False,):
        try:
            # from_keras_model exports a SavedModel and prints its signature; keep stdout clean.
            with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return bytes(_converter(model, calib_x, mode, int8_io).convert())
        except Exception as exc:  # the converter raises many types; keep the last
            last = exc
    why = f"{last.__class__.__name__}: {' '.join(str(last).split())[:200]}"
    raise GreenpipeError(
        f"TFLite {mode} int8 conversion failed ({why}); try optimize.quantization: dynamic"
    )


def embed_meta(flatbuffer: bytes, meta: dict[str, Any]) -> bytes:
    """`flatbuffer` with `meta` stored as the TFLite metadata entry `META_NAME`."""
    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(flatbuffer))
    buf = schema.BufferT()
    buf.data = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    model.buffers.append(buf)
    entry = schema.MetadataT()
    entry.name, entry.buffer = META_NAME, len(model.buffers) - 1
    model.metadata = [m for m in (model.metadata or []) if m.name != META_NAME.encode()]
    model.metadata.append(entry)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def read_meta(flatbuffer: bytes) -> dict[str, Any] | None:
    """The meta dict embedded by `embed_meta`, or None if there is none."""
    root = schema.Model.GetRootAs(flatbuffer, 0)
    for i in range(root.MetadataLength()):
        entry = root.Metadata(i)
        if entry.Name() == META_NAME.encode():
            return json.loads(root.Buffers(entry.Buffer()).DataAsNumpy().tobytes())
    return None
