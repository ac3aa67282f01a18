"""Keras graph-model weights <-> the framework-neutral NumPy layout (`backends.base.Weights`).

Keras stores conv kernels as (kh, kw, in, out), depthwise kernels as (kh, kw, C, 1) and dense
kernels as (in, out), and flattens NHWC feature maps channel-minor (index (h * W + w) * C +
c); a dense kernel over a flattened map is reshaped to (H, W, C, out) and transposed to the
neutral (out, C, H, W).
"""

from __future__ import annotations

import keras
import numpy as np

from greenpipe.backends.base import BN_KEYS, Weights, weighted_nodes


def _to_neutral(node, arrays: list[np.ndarray], cwh) -> dict[str, np.ndarray]:
    if node.op == "bn":  # Keras order: gamma, beta, moving mean, moving variance
        return {f"{node.name}.{k}": a for k, a in zip(BN_KEYS, arrays, strict=True)}
    kernel, *bias = arrays
    if node.op == "conv":
        w = kernel.transpose(3, 2, 0, 1)
    elif node.op == "dwconv":
        w = kernel.transpose(2, 3, 0, 1)
    elif cwh:  # dense over a flattened (H, W, C) map
        c, h, wd = cwh
        w = kernel.reshape(h, wd, c, -1).transpose(3, 2, 0, 1)
    else:
        w = kernel.T
    out = {f"{node.name}.w": w}
    if bias:
        out[f"{node.name}.b"] = bias[0]
    return out


def _from_neutral(node, weights: Weights, cwh) -> list[np.ndarray]:
    def get(key):
        return np.asarray(weights[f"{node.name}.{key}"], np.float32)

    if node.op == "bn":
        return [get(k) for k in BN_KEYS]
    w = get("w")
    if node.op == "conv":
        kernel = w.transpose(2, 3, 1, 0)
    elif node.op == "dwconv":
        kernel = w.transpose(2, 3, 0, 1)
    elif cwh:
        kernel = w.transpose(2, 3, 1, 0).reshape(-1, w.shape[0])
    else:
        kernel = w.T
    return [kernel, get("b")] if f"{node.name}.b" in weights else [kernel]


def _weighted(model) -> list:
    """(node, Keras layer, flattened map) for each weighted node of a float built-in model."""
    nodes = weighted_nodes(model.meta, isinstance(model, keras.Model))
    return [(node, model.get_layer(node.name), cwh) for node, cwh in nodes]


def get_weights(model: keras.Model) -> Weights:
    """`Backend.get_weights` of a Keras model."""
    out: Weights = {}
    for node, layer, cwh in _weighted(model):
        out.update({k: v.copy() for k, v in _to_neutral(node, layer.get_weights(), cwh).items()})
    return out


def set_weights(model: keras.Model, weights: Weights) -> None:
    """`Backend.set_weights` of a Keras model."""
    for node, layer, cwh in _weighted(model):
        layer.set_weights(_from_neutral(node, weights, cwh))
