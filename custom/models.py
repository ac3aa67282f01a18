"""An example of your own model for greenpipe (README: "Your own model").

Select it in a model section of params.yaml:

    distill:
      model:
        arch: custom
        file: custom/models.py     # this file: a DVC dependency of the stages that use it
        custom: {function: build, width: 16}

greenpipe calls ``build(input_shape, n_classes, framework=..., **settings)``: `input_shape` is
(height, width, channels); `framework` is "torch" or "tensorflow"; `settings` are the other
keys under `custom` (here `width`). Return a `torch.nn.Module` that maps (N, C, H, W) float
batches to logits, or a `keras.Model` that maps (N, H, W, C) batches to logits. Use only
Keras' own layers (model files load in Keras' safe mode). Import the framework inside the
function, so that a run of one framework never imports the other.

greenpipe does not prune a custom model (structured pruning needs a known structure) and
says so in the report; int8 quantization goes through FX graph mode (torch) or the TFLite
converter (Keras).
"""

from __future__ import annotations


def build(input_shape, n_classes, framework, width=16):
    """A depthwise-separable CNN: conv3x3, then two depthwise-separable blocks, global pooling."""
    if framework == "torch":
        return _torch(input_shape, n_classes, width)
    return _keras(input_shape, n_classes, width)


def _torch(input_shape, n_classes, width):
    from torch import nn

    h, w, c = input_shape

    def separable(c_in, c_out):
        return [
            nn.Conv2d(c_in, c_in, 3, padding=1, groups=c_in),
            nn.Conv2d(c_in, c_out, 1),
            nn.ReLU(),
        ]

    return nn.Sequential(
        nn.Conv2d(c, width, 3, padding=1),
        nn.ReLU(),
        *separable(width, 2 * width),
        nn.MaxPool2d(2),
        *separable(2 * width, 4 * width),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4 * width, n_classes),
    )


def _keras(input_shape, n_classes, width):
    import keras

    return keras.Sequential(
        [
            keras.Input(shape=tuple(input_shape)),
            keras.layers.Conv2D(width, 3, padding="same", activation="relu"),
            keras.layers.SeparableConv2D(2 * width, 3, padding="same", activation="relu"),
            keras.layers.MaxPooling2D(2),
            keras.layers.SeparableConv2D(4 * width, 3, padding="same", activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(n_classes, dtype="float32"),
        ]
    )
