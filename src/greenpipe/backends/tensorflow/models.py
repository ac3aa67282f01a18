"""Keras models for the layer graphs of `greenpipe.architectures` (the same layers, names and
parameter counts as the torch `GraphNet`), and the `.meta` a model file carries."""

from __future__ import annotations

import keras

from greenpipe.architectures.graph import BN_EPS, BN_MOMENTUM, Graph, Node

MODEL_NAME = "greenpipe_model"


def _layer(node: Node, last: bool):
    kw = {"name": node.name}
    if node.op == "conv":
        return keras.layers.Conv2D(
            node.filters, node.kernel, node.stride, padding="same", use_bias=node.bias, **kw
        )
    if node.op == "dwconv":
        return keras.layers.DepthwiseConv2D(
            node.kernel, node.stride, padding="same", use_bias=node.bias, **kw
        )
    if node.op == "dense":  # the logits stay float32 under a mixed-precision policy
        return keras.layers.Dense(node.filters, **kw, **({"dtype": "float32"} if last else {}))
    if node.op == "dropout":
        return keras.layers.Dropout(node.rate, **kw)
    if node.op == "relu6":
        return keras.layers.ReLU(max_value=6.0, **kw)
    if node.op == "bn":
        return keras.layers.BatchNormalization(momentum=BN_MOMENTUM, epsilon=BN_EPS, **kw)
    simple = {"relu": keras.layers.ReLU}
    simple |= {"maxpool": keras.layers.MaxPooling2D, "gap": keras.layers.GlobalAveragePooling2D}
    simple |= {"flatten": keras.layers.Flatten, "add": keras.layers.Add}
    return simple[node.op](**kw)


def build_graph(graph: Graph, input_shape: tuple[int, ...]) -> keras.Model:
    """The functional Keras model of `graph` for (H, W, C) inputs; its output the last node."""
    inputs = keras.Input(shape=tuple(input_shape), name="images")
    env = {}
    for i, node in enumerate(graph):
        ins = [env[name] for name in node.inputs] or [inputs]
        layer = _layer(node, last=i == len(graph) - 1)
        env[node.name] = layer(ins if node.op == "add" else ins[0])
    return keras.Model(inputs, env[graph[-1].name], name=MODEL_NAME)


def trainable_count(model: keras.Model) -> int:
    """Trainable weights and biases (batch norm: scale and shift), as torch counts them."""
    return int(sum(int(w.numpy().size) for w in model.trainable_weights))
