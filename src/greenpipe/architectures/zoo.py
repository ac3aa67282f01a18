"""The built-in architectures, as layer graphs: what `arch:` names in a model section.

- cnn: conv3x3-ReLU-maxpool blocks, dropout, one hidden dense layer (greenpipe's default).
- mlp: dense-ReLU-dropout layers over the flattened image.
- resnet: the CIFAR ResNet of He, Zhang, Ren and Sun (2016), "Deep Residual Learning for Image
  Recognition", https://arxiv.org/abs/1512.03385, section 4.2: depth 6n + 2, three stages of
  n basic blocks with width, 2 x width and 4 x width channels, projection shortcuts (1x1
  conv + batch norm) where the shape changes, global average pooling.
- mobilenetv2: the inverted-residual network of Sandler, Howard, Zhu, Zhmoginov and Chen
  (2018), "MobileNetV2: Inverted Residuals and Linear Bottlenecks",
  https://arxiv.org/abs/1801.04381, table 2, with its width multiplier; the stem and the
  second stage keep stride 1, as CIFAR-size ports do, so small images are not pooled away.
"""

from __future__ import annotations

from typing import Any

from greenpipe.architectures.graph import Graph, Node

# MobileNetV2 table 2: expansion t, output channels c, repeats n, first stride s
MOBILENETV2_BLOCKS = ((1, 16, 1, 1), (6, 24, 2, 1), (6, 32, 3, 2), (6, 64, 4, 2))
MOBILENETV2_BLOCKS += ((6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))


class _Builder:
    def __init__(self) -> None:
        self.nodes: list[Node] = []

    def add(self, name: str, op: str, *src: str | None, **kw: Any) -> str:
        """Append a node fed by `src` (None: the input image); returns its name."""
        inputs = tuple(s for s in src if s is not None)
        self.nodes.append(Node(name=name, op=op, inputs=inputs, **kw))
        return name

    def conv_bn(self, name: str, src, filters: int, kernel: int, stride: int, act: str | None):
        """conv (no bias: batch norm shifts) -> batch norm -> `act` (None: linear)."""
        x = self.add(
            f"{name}_conv", "conv", src, filters=filters, kernel=kernel, stride=stride, bias=False
        )
        x = self.add(f"{name}_bn", "bn", x)
        return self.add(f"{name}_{act}", act, x) if act else x


def cnn(cfg, input_shape: tuple[int, ...], n_classes: int) -> Graph:
    b, x = _Builder(), None
    h, w = int(input_shape[0]), int(input_shape[1])
    for i, c in enumerate(cfg.channels):
        x = b.add(f"conv{i}", "conv", x, filters=c, kernel=3)
        x = b.add(f"relu{i}", "relu", x)
        if min(h, w) >= 2:  # pool only while the map is at least 2x2
            x = b.add(f"pool{i}", "maxpool", x)
            h, w = h // 2, w // 2
    x = b.add("flatten", "flatten", x)
    x = b.add("dropout", "dropout", x, rate=cfg.dropout)
    x = b.add("hidden", "dense", x, filters=cfg.hidden)
    x = b.add("hidden_relu", "relu", x)
    b.add("logits", "dense", x, filters=n_classes)
    return tuple(b.nodes)


def mlp(cfg, input_shape: tuple[int, ...], n_classes: int) -> Graph:
    b = _Builder()
    x = b.add("flatten", "flatten", None)
    for i, units in enumerate(cfg.hidden):
        x = b.add(f"dense{i}", "dense", x, filters=units)
        x = b.add(f"relu{i}", "relu", x)
        x = b.add(f"dropout{i}", "dropout", x, rate=cfg.dropout)
    b.add("logits", "dense", x, filters=n_classes)
    return tuple(b.nodes)


def resnet(cfg, input_shape: tuple[int, ...], n_classes: int) -> Graph:
    b = _Builder()
    x, c_in = b.conv_bn("stem", None, cfg.width, 3, 1, "relu"), cfg.width
    for s in range(3):
        c = cfg.width * 2**s
        for i in range((cfg.depth - 2) // 6):
            stride, name = (2 if s and not i else 1), f"s{s}b{i}"
            y = b.conv_bn(f"{name}_1", x, c, 3, stride, "relu")
            y = b.conv_bn(f"{name}_2", y, c, 3, 1, None)
            short = (
                x if stride == 1 and c_in == c else b.conv_bn(f"{name}_proj", x, c, 1, stride, None)
            )
            x = b.add(f"{name}_add", "add", y, short)
            x, c_in = b.add(f"{name}_relu", "relu", x), c
    x = b.add("pool", "gap", x)
    if cfg.dropout:
        x = b.add("dropout", "dropout", x, rate=cfg.dropout)
    b.add("logits", "dense", x, filters=n_classes)
    return tuple(b.nodes)


def divisible(v: float, divisor: int = 8) -> int:
    """Channels rounded to a multiple of `divisor`, never below 90% of `v` (the paper's code)."""
    out = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return out + divisor if out < 0.9 * v else out


def mobilenetv2(cfg, input_shape: tuple[int, ...], n_classes: int) -> Graph:
    b = _Builder()
    c_in = divisible(32 * cfg.width)
    x = b.conv_bn("stem", None, c_in, 3, 1, "relu6")
    for k, (t, c, n, s) in enumerate(MOBILENETV2_BLOCKS):
        c = divisible(c * cfg.width)
        for i in range(n):
            stride, name, y = (s if i == 0 else 1), f"b{k}_{i}", x
            if t != 1:
                y = b.conv_bn(f"{name}_expand", y, c_in * t, 1, 1, "relu6")
            y = b.add(f"{name}_dw", "dwconv", y, kernel=3, stride=stride, bias=False)
            y = b.add(f"{name}_dw_bn", "bn", y)
            y = b.add(f"{name}_dw_relu6", "relu6", y)
            y = b.conv_bn(f"{name}_project", y, c, 1, 1, None)  # linear bottleneck
            if stride == 1 and c_in == c:
                y = b.add(f"{name}_add", "add", y, x)
            x, c_in = y, c
    x = b.conv_bn("head", x, cfg.last_channels, 1, 1, "relu6")
    x = b.add("pool", "gap", x)
    x = b.add("dropout", "dropout", x, rate=cfg.dropout)
    b.add("logits", "dense", x, filters=n_classes)
    return tuple(b.nodes)


BUILDERS = {"cnn": cnn, "mlp": mlp, "resnet": resnet, "mobilenetv2": mobilenetv2}


def graph_of(cfg, input_shape: tuple[int, ...], n_classes: int) -> Graph:
    """The layer graph of a built-in architecture section (`config.ModelSpec`)."""
    return BUILDERS[cfg.arch](cfg.settings, tuple(int(d) for d in input_shape), int(n_classes))
