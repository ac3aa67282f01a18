"""Structured L1-norm pruning that really shrinks the model.

Whole conv filters and dense units are removed, not masked: the pruned model is a smaller
dense network (fewer parameters, a smaller file, fewer multiply-adds), built anew through
the backend from the resized layer graph and loaded with the surviving weights. The weights
cross as NumPy in the framework-neutral `Weights` layout, so one implementation serves every
backend and every built-in architecture.

A layer can be pruned when its outputs reach only other conv or dense layers through
channel-wise layers (batch norm, activations, pooling, dropout, flatten, depthwise convs):
a CNN's conv blocks and hidden layer, an MLP's hidden layers, the inner conv of a ResNet
basic block, the expansion of a MobileNetV2 block. Channels that feed a residual addition
are kept, since both sides of the sum would have to lose the same ones. Users' own models
have no known structure and are not pruned (`NotApplicable`).

Filters are ranked by the L1 norm of their kernel, as in Li, Kadav, Durdanovic, Samet and
Graf (2017), "Pruning Filters for Efficient ConvNets", https://arxiv.org/abs/1608.08710;
layers are pruned in order, each on the kernel left after its inputs were pruned (greedy).
Dense units are ranked by the L1 norm of their incoming weights.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from greenpipe.architectures import graph as g
from greenpipe.backends.base import BN_KEYS, Backend, NotApplicable, Weights
from greenpipe.config import DistillConfig, PruneConfig

MIN_HIDDEN = 4  # the smallest dense layer pruning leaves (the configs' lower bound)
CHANNEL_WISE = ("bn", "relu", "relu6", "maxpool", "dropout", "flatten", "gap", "dwconv")


def keep_indices(scores: np.ndarray, fraction: float, minimum: int = 1) -> np.ndarray:
    """Ascending indices of the units to keep: all but round(fraction * n) of them, those
    with the largest scores (ties go to the lower index), and never fewer than `minimum`."""
    n = len(scores)
    keep = min(n, max(minimum, n - int(round(n * fraction))))
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    return np.sort(order[:keep])


def _reach(node: g.Node, cons: dict) -> tuple[list[g.Node], list[g.Node]] | None:
    """(channel-wise layers, conv/dense readers) that `node`'s outputs reach, or None when
    they reach a residual addition or the model's output."""
    passed, readers, stack = {}, {}, [node]
    while stack:
        nxt = cons[stack.pop().name]
        if not nxt:
            return None
        for m in nxt:
            if m.op in ("conv", "dense"):
                readers[m.name] = m
            elif m.op in CHANNEL_WISE:
                if m.name not in passed:
                    stack.append(m)
                passed[m.name] = m
            else:
                return None
    return list(passed.values()), list(readers.values())


def prunable(graph: g.Graph) -> list[tuple[g.Node, list[g.Node], list[g.Node]]]:
    """(layer, channel-wise layers after it, readers) for every prunable layer, in order."""
    cons = g.consumers(graph)
    out = []
    for node in graph:
        if node.op in ("conv", "dense") and (reach := _reach(node, cons)) is not None:
            out.append((node, *reach))
    return out


def prune_graph(
    graph: g.Graph, weights: Weights, channel_fraction: float, hidden_fraction: float
) -> tuple[g.Graph, Weights]:
    """The resized graph and its weights: `channel_fraction` of each prunable conv layer's
    filters and `hidden_fraction` of each prunable dense layer's units removed, with the
    matching channels of the layers after them and the inputs of their readers."""
    w = {k: np.asarray(v) for k, v in weights.items()}
    widths = {}
    for node, passed, readers in prunable(graph):
        kernel = w[f"{node.name}.w"]
        scores = np.abs(kernel).reshape(len(kernel), -1).sum(axis=1)
        if node.op == "conv":
            keep = keep_indices(scores, channel_fraction)
        else:
            keep = keep_indices(scores, hidden_fraction, min(MIN_HIDDEN, len(kernel)))
        widths[node.name] = len(keep)
        for name in [node.name] + [m.name for m in passed if m.op in ("bn", "dwconv")]:
            for key in ("w", "b", *BN_KEYS):
                if f"{name}.{key}" in w:
                    w[f"{name}.{key}"] = w[f"{name}.{key}"][keep]
        for r in readers:
            w[f"{r.name}.w"] = w[f"{r.name}.w"][:, keep]
    return g.resized(graph, widths), {k: np.ascontiguousarray(v) for k, v in w.items()}


def prune_model(backend: Backend, model: Any, cfg: PruneConfig) -> Any:
    """A new, smaller float model holding the surviving weights of `model` (not fine-tuned)."""
    meta = model.meta
    if "graph" not in meta:
        raise NotApplicable(
            "structured pruning needs a known structure; a custom model "
            f"({meta['custom']['file']}:{meta['custom']['function']}) has none"
        )
    graph = g.from_json(meta["graph"])
    if not prunable(graph):
        raise NotApplicable(f"the {meta['arch']} model has no layer that can be pruned")
    small_graph, pruned = prune_graph(
        graph, backend.get_weights(model), cfg.channel_fraction, cfg.hidden_fraction
    )
    small = backend.build_graph(small_graph, meta)
    backend.set_weights(small, pruned)
    return small


def narrowed(before: list[dict], after: list[dict]) -> dict[str, list[int]]:
    """{layer: [filters before, after]} for the layers pruning narrowed, from two graphs in
    their JSON form (`graph.to_json`, as model files keep them)."""
    return {
        a["name"]: [b["filters"], a["filters"]]
        for b, a in zip(before, after, strict=True)
        if a.get("filters") != b.get("filters")
    }


def fine_tune_config(distill: DistillConfig, prune: PruneConfig) -> DistillConfig:
    """The distillation settings for fine-tuning: distill's loss and batch size, prune's
    epochs and learning rate."""
    return distill.model_copy(update={"epochs": prune.fine_tune_epochs, "lr": prune.fine_tune_lr})
