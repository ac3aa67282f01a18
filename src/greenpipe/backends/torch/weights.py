"""`GraphNet` weights <-> the framework-neutral NumPy layout (`greenpipe.backends.base.Weights`).

torch already stores conv kernels as (out, in, kh, kw) and dense weights as (out, in), and
flattens NCHW feature maps channel-major, so a dense layer over a flattened map only needs a
reshape to (out, C, H, W).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from greenpipe.backends.base import BN_KEYS, Weights, dense_map_shape
from greenpipe.errors import GreenpipeError

_BN = {"gamma": "weight", "beta": "bias", "mean": "running_mean", "var": "running_var"}


def _graph_net(model: nn.Module):
    if model.meta.get("quantized") or "graph" not in model.meta:
        what = "an int8 model" if model.meta.get("quantized") else "a custom model"
        raise GreenpipeError(f"weights can only be read from a float built-in model, not {what}")
    return model


def _tensors(model: nn.Module):
    """(node, neutral key, torch tensor, neutral shape or None) for every weight."""
    maps = dense_map_shape(model.graph, tuple(model.meta["input_shape"]))
    for node in model.graph:
        layer = model.layers[node.name]
        if node.op == "bn":
            for key in BN_KEYS:
                yield f"{node.name}.{key}", getattr(layer, _BN[key]), None
        elif node.op in ("conv", "dwconv", "dense"):
            shape = (node.filters, *maps[node.name]) if node.name in maps else None
            yield f"{node.name}.w", layer.weight, shape
            if layer.bias is not None:
                yield f"{node.name}.b", layer.bias, None


def get_weights(model: nn.Module) -> Weights:
    """NumPy copies of every weight, bias and batch-norm statistic."""
    out: Weights = {}
    for key, t, shape in _tensors(_graph_net(model)):
        a = t.detach().cpu().numpy().copy()
        out[key] = a.reshape(shape) if shape else a
    return out


def set_weights(model: nn.Module, weights: Weights) -> None:
    """Copy `weights` into `model` (shapes must match its architecture exactly)."""
    with torch.no_grad():
        for key, t, _ in _tensors(_graph_net(model)):
            t.copy_(torch.from_numpy(np.asarray(weights[key], np.float32).reshape(t.shape)))
