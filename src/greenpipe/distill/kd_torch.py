"""Knowledge-distillation losses in PyTorch."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


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

    def forward(self, z_s: torch.Tensor, z_t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        soft = F.kl_div(
            F.log_softmax(z_s / self.t, dim=1),
            F.log_softmax(z_t / self.t, dim=1),
            reduction="batchmean",
            log_target=True,
        )
        hard = F.cross_entropy(z_s, y)
        return self.alpha * self.t**2 * soft + (1.0 - self.alpha) * hard


def build_loss(name: str, **kwargs: float) -> nn.Module:
    """The distillation loss registered as `name`."""
    registry = {"hinton": HintonKD}
    if name not in registry:
        raise ValueError(f"unknown distillation loss '{name}'; choose one of {sorted(registry)}")
    return registry[name](**kwargs)
