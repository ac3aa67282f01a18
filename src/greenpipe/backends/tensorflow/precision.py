"""Training precision for Keras: a float32 model is trained as a clone built under Keras'
mixed policy (mixed_bfloat16 or mixed_float16: bf16/fp16 compute, float32 variables), and
its weights are copied back, so the saved model stays float32 whatever the precision.

The policy is read when layers are built, so a model built in float32 cannot switch; a clone
of its layers' configs with the policy can, and its variables have the same shapes and order.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import keras

from greenpipe.config import ConfigError

POLICY = {"fp32": "float32", "bf16": "mixed_bfloat16", "fp16": "mixed_float16"}
PRECISION_OF = {v: k for k, v in POLICY.items()}  # what a model trained under a policy records


def policy_of(precision: str, gpu: bool) -> str:
    """The Keras dtype policy of train.precision ("float32", "mixed_bfloat16", ...)."""
    if precision == "fp16" and not gpu:
        raise ConfigError("precision fp16 needs a GPU; use bf16 (or fp32) on the CPU")
    if precision == "auto":
        return POLICY["fp16"] if gpu else POLICY["fp32"]
    return POLICY[precision]


@contextlib.contextmanager
def trained_in(model: keras.Model, policy: str) -> Iterator[keras.Model]:
    """Yield the model to train under `policy` (`model` itself for float32, else a clone);
    on exit the clone's weights go back into `model`."""
    if policy == model.dtype_policy.name:
        yield model
        return
    clone = under_policy(model, policy)
    yield clone
    model.set_weights(clone.get_weights())


def under_policy(model: keras.Model, policy: str) -> keras.Model:
    """A clone of `model` with every layer under `policy`, holding `model`'s weights."""

    def relayer(layer: keras.layers.Layer) -> keras.layers.Layer:
        # each layer's config names its dtype policy: the global policy alone changes nothing
        return layer.__class__.from_config({**layer.get_config(), "dtype": policy})

    clone = keras.models.clone_model(model, clone_function=relayer)
    clone.set_weights(model.get_weights())
    return clone


def as_float32(model: keras.Model) -> keras.Model:
    """`model` itself if it computes in float32, else a float32 clone with its weights: the
    TFLite converter's full-integer mode cannot lower the float16 casts of a mixed_float16
    model (a user's model built under a mixed policy, say)."""
    mixed = any(layer.compute_dtype != "float32" for layer in model.layers)
    return under_policy(model, "float32") if mixed else model
