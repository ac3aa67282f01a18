"""Knowledge-distillation losses in TensorFlow (the counterparts of `kd_torch`)."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow loads its C++ logging

import tensorflow as tf

EPS = 1e-7


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

    def soft(self, z_s: tf.Tensor, z_t: tf.Tensor) -> tf.Tensor:
        """T^2 KL(softmax(z_t/T) || softmax(z_s/T)), mean over the batch."""
        log_p_s = tf.nn.log_softmax(z_s / self.t, axis=1)
        log_p_t = tf.nn.log_softmax(z_t / self.t, axis=1)
        kl = tf.reduce_mean(tf.reduce_sum(tf.exp(log_p_t) * (log_p_t - log_p_s), axis=1))
        return self.t**2 * kl

    def hard(self, z_s: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
        labels = tf.cast(y, tf.int64)
        return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, z_s))

    def __call__(self, z_s: tf.Tensor, z_t: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
        """Scalar loss for student logits `z_s`, teacher logits `z_t` (N, classes), labels `y`."""
        z_s, z_t = tf.cast(z_s, tf.float32), tf.cast(z_t, tf.float32)
        return self.alpha * self.soft(z_s, z_t) + (1.0 - self.alpha) * self.hard(z_s, y)


def zscore(z: tf.Tensor) -> tf.Tensor:
    """Per-sample logit standardisation (z - mean) / (std + 1e-7), unbiased std as in torch."""
    n = tf.cast(tf.shape(z)[1], z.dtype)
    centred = z - tf.reduce_mean(z, axis=1, keepdims=True)
    var = tf.reduce_sum(tf.square(centred), axis=1, keepdims=True) / (n - 1.0)
    return centred / (tf.sqrt(var) + EPS)


class LogitStandardKD(HintonKD):
    r"""KD on z-scored logits (logit standardisation), mixed with the hard loss.

    .. math::
        \mathcal{Z}(z) = \frac{z - \bar{z}}{\operatorname{std}(z)}, \qquad
        L = \alpha \, T^2 \, \mathrm{KL}\big(\sigma(\mathcal{Z}(z_t) / T) \,\|\,
            \sigma(\mathcal{Z}(z_s) / T)\big) + (1 - \alpha) \, \mathrm{CE}(z_s, y)

    As `kd_torch.LogitStandardKD`: per-sample mean and (unbiased) std over the classes, T a
    base temperature, the hard term on the raw student logits.

    Sun, Ren, Li, Wang and Cao (2024), "Logit Standardization in Knowledge Distillation",
    CVPR 2024, https://arxiv.org/abs/2403.01427
    """

    def __call__(self, z_s: tf.Tensor, z_t: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
        z_s, z_t = tf.cast(z_s, tf.float32), tf.cast(z_t, tf.float32)
        soft = self.soft(zscore(z_s), zscore(z_t))
        return self.alpha * soft + (1.0 - self.alpha) * self.hard(z_s, y)


LOSSES: dict[str, type[HintonKD]] = {"hinton": HintonKD, "logit_std": LogitStandardKD}


def build_loss(name: str, **kwargs: float) -> HintonKD:
    """The distillation loss registered as `name`, built from its kwargs."""
    if name not in LOSSES:
        raise ValueError(f"unknown distillation loss '{name}'; choose one of {sorted(LOSSES)}")
    return LOSSES[name](**kwargs)
