"""torch modules for the layer graphs of `greenpipe.architectures` (and users' own modules).

`GraphNet` runs the graph's nodes in order on NCHW tensors (int8 is made from its ONNX
export by ONNX Runtime's quantizer, so the module has no quantization stubs). Batch norm
has the same momentum and eps as in Keras (graph.BN_MOMENTUM, BN_EPS), so the two frameworks
train the same architecture alike.
"""

from __future__ import annotations

import torch
from torch import nn

from greenpipe.architectures.graph import BN_EPS, BN_MOMENTUM, Graph, Node, shapes


def _layer(node: Node, shape_in: tuple[int, ...], flat_in: int) -> nn.Module:
    c_in = shape_in[-1]
    pad = node.kernel // 2
    if node.op == "conv":
        return nn.Conv2d(c_in, node.filters, node.kernel, node.stride, pad, bias=node.bias)
    if node.op == "dwconv":
        return nn.Conv2d(c_in, c_in, node.kernel, node.stride, pad, groups=c_in, bias=node.bias)
    if node.op == "bn":
        bn = nn.BatchNorm2d if len(shape_in) == 3 else nn.BatchNorm1d
        return bn(c_in, eps=BN_EPS, momentum=1 - BN_MOMENTUM)
    if node.op == "dense":
        return nn.Linear(flat_in, node.filters)
    if node.op == "dropout":
        return nn.Dropout(node.rate)
    if node.op == "gap":
        return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
    simple = {"relu": nn.ReLU, "relu6": nn.ReLU6, "maxpool": lambda: nn.MaxPool2d(2)}
    simple |= {"flatten": nn.Flatten, "add": nn.Identity}  # add: summed in GraphNet.forward
    return simple[node.op]()


class GraphNet(nn.Module):
    """The network of `graph` for (H, W, C) inputs, called on (N, C, H, W) batches."""

    def __init__(self, graph: Graph, input_shape: tuple[int, ...]):
        super().__init__()
        self.graph = tuple(graph)
        shp = shapes(self.graph, input_shape)
        self.layers = nn.ModuleDict()
        for node in self.graph:
            s_in = shp[node.inputs[0]] if node.inputs else tuple(input_shape)
            flat = 1
            for d in s_in:
                flat *= int(d)
            self.layers[node.name] = _layer(node, s_in, flat)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        env: dict[str, torch.Tensor] = {}
        for node in self.graph:
            ins = [env[i] for i in node.inputs] or [x]
            if node.op == "add":
                out = ins[0]
                for other in ins[1:]:
                    out = out + other
            else:
                out = self.layers[node.name](ins[0])
            env[node.name] = out
        return out
