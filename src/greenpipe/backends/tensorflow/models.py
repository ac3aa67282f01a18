"""The Keras CNN used for teacher and student: the same layers as the torch `SmallCNN`.

The model's `.meta` is derivable from its layers (`meta_of`), so a `.keras` file needs no
side channel: loading rebuilds the same dict that `build_cnn` attached.
"""

from __future__ import annotations

from typing import Any

import keras

from greenpipe.config import ModelArch

MODEL_NAME = "greenpipe_smallcnn"


def build_cnn(arch: ModelArch, input_shape: tuple[int, ...], n_classes: int) -> keras.Model:
    """conv3x3-ReLU-maxpool blocks, then dropout, one hidden dense layer and float32 logits.

    A block pools only while the feature map is at least 2x2, as in the torch model. The
    logits layer is float32 even under a mixed-precision policy.
    """
    h, w, _ = input_shape
    inputs = keras.Input(shape=tuple(input_shape), name="images")
    x = inputs
    for i, c in enumerate(arch.channels):
        x = keras.layers.Conv2D(c, 3, padding="same", activation="relu", name=f"conv{i}")(x)
        if min(h, w) >= 2:
            x = keras.layers.MaxPooling2D(2, name=f"pool{i}")(x)
            h, w = h // 2, w // 2
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dropout(arch.dropout, name="dropout")(x)
    x = keras.layers.Dense(arch.hidden, activation="relu", name="hidden")(x)
    logits = keras.layers.Dense(n_classes, dtype="float32", name="logits")(x)
    model = keras.Model(inputs, logits, name=MODEL_NAME)
    model.meta = meta_of(model)
    return model


def meta_of(model: keras.Model) -> dict[str, Any]:
    """{"arch", "input_shape", "n_classes", "quantized": None}, read off the layers."""
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    arch = ModelArch(
        channels=tuple(layer.filters for layer in convs),
        hidden=model.get_layer("hidden").units,
        dropout=model.get_layer("dropout").rate,
    )
    return {
        "arch": arch.model_dump(mode="json"),
        "input_shape": [int(d) for d in model.input_shape[1:]],
        "n_classes": int(model.get_layer("logits").units),
        "quantized": None,
    }


def param_count(arch: ModelArch, input_shape: tuple[int, ...], n_classes: int) -> int:
    """Weights + biases of `build_cnn(arch, input_shape, n_classes)`, without building it."""
    h, w, c = input_shape
    n = 0
    for out_c in arch.channels:
        n += 9 * c * out_c + out_c
        if min(h, w) >= 2:
            h, w = h // 2, w // 2
        c = out_c
    flat = c * h * w
    return n + flat * arch.hidden + arch.hidden + arch.hidden * n_classes + n_classes
