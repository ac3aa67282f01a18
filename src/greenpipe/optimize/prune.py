"""Structured L1-norm pruning that really shrinks the model.

Whole conv filters and hidden units are removed, not masked: the pruned model is a smaller
dense CNN (fewer parameters, a smaller file, fewer multiply-adds), built anew through the
backend and loaded with the surviving weights. The weights cross as NumPy in the
framework-neutral `Weights` layout, so one implementation serves every backend.

Filters are ranked by the L1 norm of their kernel, as in Li, Kadav, Durdanovic, Samet and
Graf (2017), "Pruning Filters for Efficient ConvNets", https://arxiv.org/abs/1608.08710;
layers are pruned in order, each on the kernel left after its inputs were pruned (greedy).
Hidden units are ranked by the L1 norm of their incoming weights.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from greenpipe.backends.base import Backend, Weights
from greenpipe.config import DistillConfig, ModelArch, PruneConfig

MIN_HIDDEN = 4  # ModelArch's lower bound on `hidden`


def keep_indices(scores: np.ndarray, fraction: float, minimum: int = 1) -> np.ndarray:
    """Ascending indices of the units to keep: all but round(fraction * n) of them, those
    with the largest scores (ties go to the lower index), and never fewer than `minimum`."""
    n = len(scores)
    keep = min(n, max(minimum, n - int(round(n * fraction))))
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    return np.sort(order[:keep])


def n_convs(weights: Weights) -> int:
    return sum(1 for k in weights if k.startswith("conv") and k.endswith(".w"))


def prune_weights(weights: Weights, channel_fraction: float, hidden_fraction: float) -> Weights:
    """The weights of the pruned network: `channel_fraction` of each conv layer's filters and
    `hidden_fraction` of the hidden units removed, with the matching inputs of the next layer."""
    w = {k: np.asarray(v) for k, v in weights.items()}
    count = n_convs(w)
    for i in range(count):
        kernel = w[f"conv{i}.w"]
        keep = keep_indices(np.abs(kernel).sum(axis=(1, 2, 3)), channel_fraction)
        w[f"conv{i}.w"], w[f"conv{i}.b"] = kernel[keep], w[f"conv{i}.b"][keep]
        nxt = f"conv{i + 1}.w" if i + 1 < count else "hidden.w"
        w[nxt] = w[nxt][:, keep]
    hidden = w["hidden.w"]
    scores = np.abs(hidden).reshape(len(hidden), -1).sum(axis=1)
    keep = keep_indices(scores, hidden_fraction, min(MIN_HIDDEN, len(hidden)))
    w["hidden.w"], w["hidden.b"] = hidden[keep], w["hidden.b"][keep]
    w["logits.w"] = w["logits.w"][:, keep]
    return {k: np.ascontiguousarray(v) for k, v in w.items()}


def arch_of(weights: Weights, dropout: float) -> ModelArch:
    """The `ModelArch` whose layers have the shapes of `weights`."""
    channels = tuple(len(weights[f"conv{i}.b"]) for i in range(n_convs(weights)))
    return ModelArch(channels=channels, hidden=len(weights["hidden.b"]), dropout=dropout)


def prune_model(backend: Backend, model: Any, cfg: PruneConfig) -> Any:
    """A new, smaller float model holding the surviving weights of `model` (not fine-tuned)."""
    pruned = prune_weights(backend.get_weights(model), cfg.channel_fraction, cfg.hidden_fraction)
    meta = model.meta
    arch = arch_of(pruned, float(meta["arch"]["dropout"]))
    small = backend.build(arch, tuple(meta["input_shape"]), int(meta["n_classes"]))
    backend.set_weights(small, pruned)
    return small


def fine_tune_config(distill: DistillConfig, prune: PruneConfig) -> DistillConfig:
    """The distillation settings for fine-tuning: distill's loss and batch size, prune's
    epochs and learning rate."""
    return distill.model_copy(update={"epochs": prune.fine_tune_epochs, "lr": prune.fine_tune_lr})
