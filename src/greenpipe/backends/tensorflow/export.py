"""Inference runtimes of a float Keras model: ONNX through tf2onnx (NHWC input, dynamic
batch). TFLite, the other TensorFlow runtime, lives in `quantize`."""

from __future__ import annotations

import contextlib
import io
import logging
import warnings

import keras
import tensorflow as tf

from greenpipe.backends.base import NotApplicable

OPSET = 17


def to_onnx(model: keras.Model) -> bytes:
    """The fp32 ONNX graph of a float Keras model, serialised (NHWC input, as Keras reads)."""
    import tf2onnx

    shape = (None, *model.meta["input_shape"])
    spec = (tf.TensorSpec(shape, tf.float32, name="images"),)
    logging.getLogger("tf2onnx").setLevel(logging.ERROR)
    try:
        # tf2onnx prints its progress and warns about NumPy aliases it still probes
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            proto, _ = tf2onnx.convert.from_keras(model, input_signature=spec, opset=OPSET)
    except Exception as exc:  # ops tf2onnx has no handler for, Keras 3 layers it cannot read
        lines = [ln for ln in str(exc).splitlines() if ln.strip()]
        why = (lines[0] if lines else exc.__class__.__name__)[:200]
        raise NotApplicable(f"tf2onnx cannot convert the model: {why}") from None
    return proto.SerializeToString(deterministic=True)
