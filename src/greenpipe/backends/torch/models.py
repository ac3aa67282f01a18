"""torch modules for the layer graphs of `greenpipe.architectures` (and users' own modules).

`GraphNet` runs the graph's nodes in order on NCHW tensors. Quant/DeQuant stubs are
identities in float mode and mark where int8 begins and ends after static quantization;
residual additions go through `FloatFunctional`, which quantization turns into int8 adds.
Batch norm uses Keras' defaults (momentum 0.99 in Keras' convention, eps 1e-3), so the
two frameworks train the same architecture alike.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.ao.nn.quantized import FloatFunctional
from torch.ao.quantization import DeQuantStub, QuantStub

from greenpipe.architectures.graph import Graph, Node, consumers, shapes


def _layer(node: Node, shape_in: tuple[int, ...], flat_in: int) -> nn.Module:
    c_in = shape_in[-1]
    pad = node.kernel // 2
    if node.op == "conv":
        return nn.Conv2d(c_in, node.filters, node.kernel, node.stride, pad, bias=node.bias)
    if node.op == "dwconv":
        return nn.Conv2d(c_in, c_in, node.kernel, node.stride, pad, groups=c_in, bias=node.bias)
    if node.op == "bn":
        bn = nn.BatchNorm2d if len(shape_in) == 3 else nn.BatchNorm1d
        return bn(c_in, eps=1e-3, momentum=0.01)
    if node.op == "dense":
        return nn.Linear(flat_in, node.filters)
    if node.op == "dropout":
        return nn.Dropout(node.rate)
    if node.op == "gap":
        return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
    simple = {"relu": nn.ReLU, "relu6": nn.ReLU6, "maxpool": lambda: nn.MaxPool2d(2)}
    simple |= {"flatten": nn.Flatten, "add": FloatFunctional}
    return simple[node.op]()


class GraphNet(nn.Module):
    """The network of `graph` for (H, W, C) inputs, called on (N, C, H, W) batches."""

    def __init__(self, graph: Graph, input_shape: tuple[int, ...]):
        super().__init__()
        self.graph = tuple(graph)
        shp = shapes(self.graph, input_shape)
        self.quant, self.dequant = QuantStub(), DeQuantStub()
        self.layers = nn.ModuleDict()
        for node in self.graph:
            s_in = shp[node.inputs[0]] if node.inputs else tuple(input_shape)
            flat = 1
            for d in s_in:
                flat *= int(d)
            self.layers[node.name] = _layer(node, s_in, flat)

    def fusion_groups(self) -> list[list[str]]:
        """conv+bn(+ReLU), conv+ReLU and Linear+ReLU chains that static quantization fuses
        (a link only where the next layer is the sole reader of the previous one)."""
        cons, groups = consumers(self.graph), []
        for node in self.graph:
            if node.op not in ("conv", "dwconv", "dense"):
                continue
            chain, cur = [node], node
            for want in (("bn", "relu"), ("relu",)) if node.op != "dense" else (("relu",),):
                nxt = cons[cur.name]
                if len(nxt) == 1 and nxt[0].op in want:
                    chain.append(nxt[0])
                    cur = nxt[0]
            if len(chain) > 1:
                groups.append([f"layers.{n.name}" for n in chain])
        return groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        env: dict[str, torch.Tensor] = {}
        x = self.quant(x)
        for node in self.graph:
            ins = [env[i] for i in node.inputs] or [x]
            layer = self.layers[node.name]
            if node.op == "add":
                out = ins[0]
                for other in ins[1:]:
                    out = layer.add(out, other)
            else:
                out = layer(ins[0])
            env[node.name] = out
        return self.dequant(out)
