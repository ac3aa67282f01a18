"""A small layer-graph IR: nodes in topological order, the last one the logits.

Shapes are (H, W, C) for feature maps and (F,) for vectors; convolutions pad "same" (an
output of ceil(H / stride) per side in both frameworks), max pooling halves (floor). A
node's `inputs` are node names; an empty tuple means the graph's input image.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

# Batch norm in both frameworks: the moving averages keep BN_MOMENTUM of their value per step
# (Keras' convention; torch's momentum is 1 - it) and eps is BN_EPS. Keras' default 0.99 needs
# hundreds of steps to forget its initial variance of 1: on the digits (35 steps an epoch) a
# MobileNetV2's eval-mode features collapsed (moving variance 0.83 against a batch's 0.005
# after an epoch) and Keras students stayed at chance; 0.9 is torch's own default.
BN_MOMENTUM = 0.9
BN_EPS = 1e-3

OPS = ("conv", "dwconv", "bn", "relu", "relu6", "maxpool", "gap", "flatten", "dropout", "dense")
OPS += ("add",)
WEIGHTED = ("conv", "dwconv", "bn", "dense")


@dataclass(frozen=True)
class Node:
    """One layer. conv: `filters` outputs, `kernel` x `kernel`, `stride`; dwconv: depthwise
    (one filter per input channel); dense: `filters` units; dropout: `rate`; add: sum of
    its inputs; the others take no settings."""

    name: str
    op: str
    inputs: tuple[str, ...] = ()
    filters: int = 0
    kernel: int = 1
    stride: int = 1
    bias: bool = True
    rate: float = 0.0


Graph = tuple[Node, ...]


def to_json(graph: Graph) -> list[dict[str, Any]]:
    """The graph as JSON-ready dicts, default fields left out (stored in model files)."""
    defaults = {f.name: f.default for f in fields(Node)}
    out = []
    for node in graph:
        d = {k: v for k, v in asdict(node).items() if k in ("name", "op") or v != defaults[k]}
        if "inputs" in d:
            d["inputs"] = list(d["inputs"])
        out.append(d)
    return out


def from_json(items: list[dict[str, Any]]) -> Graph:
    return tuple(Node(**{**d, "inputs": tuple(d.get("inputs", ()))}) for d in items)


def shapes(graph: Graph, input_shape: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
    """Each node's output shape for an (H, W, C) input."""
    out: dict[str, tuple[int, ...]] = {}
    for node in graph:
        ins = [out[i] for i in node.inputs] or [tuple(int(d) for d in input_shape)]
        out[node.name] = _shape(node, ins)
    return out


def _shape(node: Node, ins: list[tuple[int, ...]]) -> tuple[int, ...]:
    s = ins[0]
    if node.op in ("conv", "dwconv"):
        h, w = math.ceil(s[0] / node.stride), math.ceil(s[1] / node.stride)
        return (h, w, node.filters if node.op == "conv" else s[2])
    if node.op == "maxpool":
        return (s[0] // 2, s[1] // 2, s[2])
    if node.op == "gap":
        return (s[2],)
    if node.op == "flatten":
        return (math.prod(s),)
    if node.op == "dense":
        return (node.filters,)
    if node.op == "add" and any(i != s for i in ins):
        raise ValueError(f"add '{node.name}' sums shapes {ins}")
    return s


def param_count(graph: Graph, input_shape: tuple[int, ...]) -> int:
    """Trainable weights and biases (batch norm: scale and shift; running stats excluded)."""
    shp = shapes(graph, input_shape)
    n = 0
    for node in graph:
        c_in = shp[node.inputs[0]][-1] if node.inputs else int(input_shape[-1])
        if node.op == "conv":
            n += node.kernel**2 * c_in * node.filters + (node.filters if node.bias else 0)
        elif node.op == "dwconv":
            n += node.kernel**2 * c_in + (c_in if node.bias else 0)
        elif node.op == "bn":
            n += 2 * c_in
        elif node.op == "dense":
            flat = math.prod(shp[node.inputs[0]]) if node.inputs else math.prod(input_shape)
            n += flat * node.filters + node.filters
    return n


def consumers(graph: Graph) -> dict[str, list[Node]]:
    out: dict[str, list[Node]] = {n.name: [] for n in graph}
    for node in graph:
        for i in node.inputs:
            out[i].append(node)
    return out


def resized(graph: Graph, widths: dict[str, int]) -> Graph:
    """The graph with the conv filters / dense units of the nodes in `widths` changed."""
    return tuple(replace(n, filters=widths[n.name]) if n.name in widths else n for n in graph)
