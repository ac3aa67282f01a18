"""Knowledge-distillation losses in PyTorch (registered by name in `LOSSES`)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

EPS = 1e-7


class HintonKD(nn.Module):
    r"""Hinton knowledge distillation: soft targets at temperature T, mixed with the hard loss.

    .. math::
        L = \alpha \, T^2 \, \mathrm{KL}\big(\sigma(z_t / T) \,\|\, \sigma(z_s / T)\big)
            + (1 - \alpha) \, \mathrm{CE}(z_s, y)

    where :math:`z_s, z_t` are student and teacher logits and :math:`\sigma` is the softmax.
    The :math:`T^2` factor keeps the soft-target gradients on the scale of the hard ones.

    Hinton, Vinyals and Dean (2015), "Distilling the Knowledge in a Neural Network",
    https://arxiv.org/abs/1503.02531
    """

    def __init__(self, temperature: float, alpha: float) -> None:
        super().__init__()
        self.t, self.alpha = float(temperature), float(alpha)

    def soft(self, z_s: torch.Tensor, z_t: torch.Tensor) -> torch.Tensor:
        """T^2 KL(softmax(z_t/T) || softmax(z_s/T)), mean over the batch."""
        kl = F.kl_div(
            F.log_softmax(z_s / self.t, dim=1),
            F.log_softmax(z_t / self.t, dim=1),
            reduction="batchmean",
            log_target=True,
        )
        return self.t**2 * kl

    def forward(self, z_s: torch.Tensor, z_t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        hard = F.cross_entropy(z_s, y)
        return self.alpha * self.soft(z_s, z_t) + (1.0 - self.alpha) * hard


def zscore(z: torch.Tensor) -> torch.Tensor:
    """Per-sample logit standardisation (z - mean) / (std + 1e-7), unbiased std over classes."""
    return (z - z.mean(dim=1, keepdim=True)) / (z.std(dim=1, keepdim=True) + EPS)


class LogitStandardKD(HintonKD):
    r"""KD on z-scored logits (logit standardisation), mixed with the hard loss.

    .. math::
        \mathcal{Z}(z) = \frac{z - \bar{z}}{\operatorname{std}(z)}, \qquad
        L = \alpha \, T^2 \, \mathrm{KL}\big(\sigma(\mathcal{Z}(z_t) / T) \,\|\,
            \sigma(\mathcal{Z}(z_s) / T)\big) + (1 - \alpha) \, \mathrm{CE}(z_s, y)

    Standardising each sample's logits (mean and standard deviation over the classes) before
    the temperature softmax frees the student from matching the teacher's logit range and
    variance; only their relations are transferred. The mean and std are taken per sample,
    T acts as a base temperature, and the hard term uses the raw student logits.

    Sun, Ren, Li, Wang and Cao (2024), "Logit Standardization in Knowledge Distillation",
    CVPR 2024, https://arxiv.org/abs/2403.01427
    """

    def forward(self, z_s: torch.Tensor, z_t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        hard = F.cross_entropy(z_s, y)
        return self.alpha * self.soft(zscore(z_s), zscore(z_t)) + (1.0 - self.alpha) * hard


LOSSES: dict[str, type[HintonKD]] = {"hinton": HintonKD, "logit_std": LogitStandardKD}


def build_loss(name: str, **kwargs: float) -> nn.Module:
    """The distillation loss registered as `name`, built from its kwargs."""
    if name not in LOSSES:
        raise ValueError(f"unknown distillation loss '{name}'; choose one of {sorted(LOSSES)}")
    return LOSSES[name](**kwargs)
