"""`GraphNet` weights <-> the framework-neutral NumPy layout (`greenpipe.backends.base.Weights`).

torch already stores conv kernels as (out, in, kh, kw) and dense weights as (out, in), and
flattens NCHW feature maps channel-major, so a dense layer over a flattened map only needs a
reshape to (out, C, H, W).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from greenpipe.backends.base import BN_KEYS, Weights, weighted_nodes

_BN = {"gamma": "weight", "beta": "bias", "mean": "running_mean", "var": "running_var"}


def _tensors(model: nn.Module) -> list:
    """(neutral key, torch tensor, neutral shape or None) for every weight."""
    out = []
    for node, cwh in weighted_nodes(model.meta, not model.meta.get("quantized")):
        layer = model.layers[node.name]
        if node.op == "bn":
            out += [(f"{node.name}.{key}", getattr(layer, _BN[key]), None) for key in BN_KEYS]
            continue
        out.append((f"{node.name}.w", layer.weight, (node.filters, *cwh) if cwh else None))
        if layer.bias is not None:
            out.append((f"{node.name}.b", layer.bias, None))
    return out


def get_weights(model: nn.Module) -> Weights:
    """`Backend.get_weights` of a `GraphNet`."""
    out: Weights = {}
    for key, t, shape in _tensors(model):
        a = t.detach().cpu().numpy().copy()
        out[key] = a.reshape(shape) if shape else a
    return out


def set_weights(model: nn.Module, weights: Weights) -> None:
    """`Backend.set_weights` of a `GraphNet`."""
    with torch.no_grad():
        for key, t, _ in _tensors(model):
            t.copy_(torch.from_numpy(np.asarray(weights[key], np.float32).reshape(t.shape)))
