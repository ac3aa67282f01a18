"""Knowledge-distillation losses in TensorFlow (the counterpart of `kd_torch`)."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow loads its C++ logging

import tensorflow as tf


class HintonKD:
    r"""Hinton knowledge distillation: soft targets at temperature T, mixed with the hard loss.

    .. math::
        L = \alpha \, T^2 \, \mathrm{KL}\big(\sigma(z_t / T) \,\|\, \sigma(z_s / T)\big)
            + (1 - \alpha) \, \mathrm{CE}(z_s, y)

    where :math:`z_s, z_t` are student and teacher logits and :math:`\sigma` is the softmax.
    The :math:`T^2` factor keeps the soft-target gradients on the scale of the hard ones.
    Both terms are means over the batch (KL summed over classes), as in `kd_torch.HintonKD`.

    Hinton, Vinyals and Dean (2015), "Distilling the Knowledge in a Neural Network",
    https://arxiv.org/abs/1503.02531
    """

    def __init__(self, temperature: float, alpha: float) -> None:
        self.t, self.alpha = float(temperature), float(alpha)

    def __call__(self, z_s: tf.Tensor, z_t: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
        """Scalar loss for student logits `z_s`, teacher logits `z_t` (N, classes), labels `y`."""
        z_s, z_t = tf.cast(z_s, tf.float32), tf.cast(z_t, tf.float32)
        log_p_s = tf.nn.log_softmax(z_s / self.t, axis=1)
        log_p_t = tf.nn.log_softmax(z_t / self.t, axis=1)
        soft = tf.reduce_mean(tf.reduce_sum(tf.exp(log_p_t) * (log_p_t - log_p_s), axis=1))
        hard = tf.reduce_mean(
            tf.nn.sparse_softmax_cross_entropy_with_logits(labels=tf.cast(y, tf.int64), logits=z_s)
        )
        return self.alpha * self.t**2 * soft + (1.0 - self.alpha) * hard


def build_loss(name: str, **kwargs: float) -> HintonKD:
    """The distillation loss registered as `name`."""
    registry = {"hinton": HintonKD}
    if name not in registry:
        raise ValueError(f"unknown distillation loss '{name}'; choose one of {sorted(registry)}")
    return registry[name](**kwargs)
