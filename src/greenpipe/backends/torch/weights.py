"""`SmallCNN` weights <-> the framework-neutral NumPy layout (`greenpipe.backends.base.Weights`).

torch already stores conv kernels as (out, in, kh, kw) and dense weights as (out, in), and
flattens NCHW feature maps channel-major, so the hidden weight only needs a reshape.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from greenpipe.backends.base import Weights, feature_hw
from greenpipe.errors import GreenpipeError


def _convs(model: nn.Module) -> list[nn.Conv2d]:
    return [m for m in model.features if isinstance(m, nn.Conv2d)]


def _dense(model: nn.Module) -> tuple[nn.Linear, nn.Linear]:
    hidden, logits = (m for m in model.classifier if isinstance(m, nn.Linear))
    return hidden, logits


def _check_float(model: nn.Module) -> None:
    if model.meta.get("quantized"):
        raise GreenpipeError("weights can only be read from a float model, not an int8 one")


def get_weights(model: nn.Module) -> Weights:
    """NumPy copies of every conv, hidden and logits weight and bias."""
    _check_float(model)
    out: Weights = {}
    convs = _convs(model)
    for i, conv in enumerate(convs):
        out[f"conv{i}.w"] = conv.weight.detach().cpu().numpy().copy()
        out[f"conv{i}.b"] = conv.bias.detach().cpu().numpy().copy()
    hidden, logits = _dense(model)
    h, w = feature_hw(tuple(model.meta["input_shape"]), len(convs))
    c = convs[-1].out_channels
    out["hidden.w"] = hidden.weight.detach().cpu().numpy().reshape(-1, c, h, w).copy()
    out["hidden.b"] = hidden.bias.detach().cpu().numpy().copy()
    out["logits.w"] = logits.weight.detach().cpu().numpy().copy()
    out["logits.b"] = logits.bias.detach().cpu().numpy().copy()
    return out


def set_weights(model: nn.Module, weights: Weights) -> None:
    """Copy `weights` into `model` (shapes must match its architecture exactly)."""
    _check_float(model)
    hidden, logits = _dense(model)
    pairs = [(conv, f"conv{i}") for i, conv in enumerate(_convs(model))]
    pairs += [(hidden, "hidden"), (logits, "logits")]
    with torch.no_grad():
        for layer, key in pairs:
            w = np.asarray(weights[f"{key}.w"], dtype=np.float32).reshape(layer.weight.shape)
            layer.weight.copy_(torch.from_numpy(w))
            layer.bias.copy_(torch.from_numpy(np.asarray(weights[f"{key}.b"], np.float32)))
