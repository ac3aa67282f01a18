"""Keras CNN weights <-> the framework-neutral NumPy layout (`greenpipe.backends.base.Weights`).

Keras stores conv kernels as (kh, kw, in, out) and dense kernels as (in, out), and flattens
NHWC feature maps channel-minor (index (h * W + w) * C + c); the hidden kernel is reshaped to
(H, W, C, hidden) and transposed to the neutral (hidden, C, H, W).
"""

from __future__ import annotations

import keras
import numpy as np

from greenpipe.backends.base import Weights, feature_hw
from greenpipe.errors import GreenpipeError


def _convs(model: keras.Model) -> list:
    return [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]


def _check_float(model) -> None:
    if not isinstance(model, keras.Model):
        raise GreenpipeError("weights can only be read from a float model, not an int8 one")


def get_weights(model: keras.Model) -> Weights:
    """NumPy copies of every conv, hidden and logits weight and bias."""
    _check_float(model)
    out: Weights = {}
    convs = _convs(model)
    for i, conv in enumerate(convs):
        kernel, bias = conv.get_weights()
        out[f"conv{i}.w"], out[f"conv{i}.b"] = kernel.transpose(3, 2, 0, 1).copy(), bias.copy()
    h, w = feature_hw(tuple(model.meta["input_shape"]), len(convs))
    kernel, bias = model.get_layer("hidden").get_weights()
    c = convs[-1].filters
    out["hidden.w"] = kernel.reshape(h, w, c, -1).transpose(3, 2, 0, 1).copy()
    out["hidden.b"] = bias.copy()
    kernel, bias = model.get_layer("logits").get_weights()
    out["logits.w"], out["logits.b"] = kernel.T.copy(), bias.copy()
    return out


def set_weights(model: keras.Model, weights: Weights) -> None:
    """Copy `weights` into `model` (shapes must match its architecture exactly)."""
    _check_float(model)
    for i, conv in enumerate(_convs(model)):
        kernel = np.asarray(weights[f"conv{i}.w"], np.float32).transpose(2, 3, 1, 0)
        conv.set_weights([kernel, np.asarray(weights[f"conv{i}.b"], np.float32)])
    hidden_w = np.asarray(weights["hidden.w"], np.float32)
    kernel = hidden_w.transpose(2, 3, 1, 0).reshape(-1, hidden_w.shape[0])
    model.get_layer("hidden").set_weights([kernel, np.asarray(weights["hidden.b"], np.float32)])
    logits = [np.asarray(weights["logits.w"], np.float32).T, np.asarray(weights["logits.b"])]
    model.get_layer("logits").set_weights([logits[0], logits[1].astype(np.float32)])
