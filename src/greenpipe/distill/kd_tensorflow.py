"""Knowledge-distillation losses in TensorFlow (the counterparts of `kd_torch`; the losses
themselves are stated in `greenpipe.distill`)."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow loads its C++ logging

import tensorflow as tf

EPS = 1e-7


class HintonKD:
    """The ``hinton`` loss of `greenpipe.distill` (its equation and paper), in TensorFlow."""

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
    """Per-sample logit standardisation, the Z of `greenpipe.distill`'s ``logit_std``
    (unbiased std, computed by hand: TensorFlow's is the biased one)."""
    n = tf.cast(tf.shape(z)[1], z.dtype)
    centred = z - tf.reduce_mean(z, axis=1, keepdims=True)
    var = tf.reduce_sum(tf.square(centred), axis=1, keepdims=True) / (n - 1.0)
    return centred / (tf.sqrt(var) + EPS)


class LogitStandardKD(HintonKD):
    """The ``logit_std`` loss of `greenpipe.distill` (its equation and paper), in TensorFlow."""

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
