"""greenpipe.distill: the registered KD losses (Hinton, logit standardisation) in both
frameworks, checked against NumPy and against each other."""

from __future__ import annotations

import re
import typing

import numpy as np
import pytest
import torch

from greenpipe import distill
from greenpipe.config import DistillConfig
from greenpipe.distill import LOSSES, kd_torch


def _log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(1, keepdims=True)
    return z - np.log(np.exp(z).sum(1, keepdims=True))


def _zscore(z: np.ndarray) -> np.ndarray:
    return (z - z.mean(1, keepdims=True)) / (z.std(1, ddof=1, keepdims=True) + 1e-7)


def reference(name: str, z_s, z_t, y, t: float, alpha: float) -> float:
    """The loss from its equation, in NumPy."""
    ce = -_log_softmax(z_s)[np.arange(len(y)), y].mean()
    s, tt = (_zscore(z_s), _zscore(z_t)) if name == "logit_std" else (z_s, z_t)
    lp_s, lp_t = _log_softmax(s / t), _log_softmax(tt / t)
    kl = (np.exp(lp_t) * (lp_t - lp_s)).sum(1).mean()
    return float(alpha * t**2 * kl + (1 - alpha) * ce)


@pytest.fixture
def logits():
    rng = np.random.default_rng(0)
    z_s, z_t = (rng.normal(size=(16, 10)) * 3).astype(np.float32)[None].repeat(2, 0)
    z_t = z_t + rng.normal(size=z_t.shape).astype(np.float32) * 2
    return z_s, z_t, rng.integers(0, 10, 16)


def _torch_loss(name, z_s, z_t, y, **kw) -> float:
    loss = kd_torch.build_loss(name, **kw)
    return float(loss(torch.from_numpy(z_s), torch.from_numpy(z_t), torch.from_numpy(y)))


def test_registry_names_match_config_and_both_backends():
    assert set(LOSSES) == set(kd_torch.LOSSES)
    assert set(LOSSES) == set(typing.get_args(DistillConfig.model_fields["loss"].annotation))
    # each loss's equation and paper, stated once in greenpipe.distill for both frameworks
    parts = re.split(r"^``(\w+)``: ", distill.__doc__, flags=re.M)
    sections = dict(zip(parts[1::2], parts[2::2], strict=True))
    for name in LOSSES:
        assert "arxiv.org" in sections[name] and ".. math::" in sections[name]
        assert f"``{name}`` loss of `greenpipe.distill`" in kd_torch.LOSSES[name].__doc__
    with pytest.raises(ValueError, match="unknown distillation loss 'fitnets'.*hinton"):
        kd_torch.build_loss("fitnets", temperature=2, alpha=0.5)


@pytest.mark.parametrize("name", LOSSES)
@pytest.mark.parametrize("t, alpha", [(4.0, 0.7), (1.0, 1.0), (2.5, 0.0)])
def test_torch_losses_match_their_equation(logits, name, t, alpha):
    z_s, z_t, y = logits
    got = _torch_loss(name, z_s, z_t, y, temperature=t, alpha=alpha)
    assert got == pytest.approx(reference(name, z_s, z_t, y, t, alpha), rel=1e-4)


def test_logit_std_ignores_the_scale_and_shift_of_the_logits(logits):
    z_s, z_t, y = logits
    base = _torch_loss("logit_std", z_s, z_t, y, temperature=2, alpha=1.0)
    moved = _torch_loss("logit_std", z_s, 5 * z_t - 3, y, temperature=2, alpha=1.0)
    assert moved == pytest.approx(base, rel=1e-4)
    hinton = _torch_loss("hinton", z_s, z_t, y, temperature=2, alpha=1.0)
    assert _torch_loss("hinton", z_s, 5 * z_t - 3, y, temperature=2, alpha=1.0) != pytest.approx(
        hinton, rel=1e-2
    )


def test_logit_std_is_zero_for_an_affine_copy_of_the_teacher(logits):
    _, z_t, y = logits
    assert _torch_loss("logit_std", 0.1 * z_t + 7, z_t, y, temperature=4, alpha=1.0) == (
        pytest.approx(0.0, abs=1e-5)
    )


@pytest.mark.parametrize("name", LOSSES)
def test_tensorflow_losses_equal_the_torch_ones(logits, name):
    kd_tf = pytest.importorskip("greenpipe.distill.kd_tensorflow")
    z_s, z_t, y = logits
    assert set(kd_tf.LOSSES) == set(LOSSES)
    got = float(kd_tf.build_loss(name, temperature=3.0, alpha=0.6)(z_s, z_t, y))
    assert got == pytest.approx(_torch_loss(name, z_s, z_t, y, temperature=3.0, alpha=0.6), 1e-4)
    with pytest.raises(ValueError, match="unknown distillation loss"):
        kd_tf.build_loss("nope")
