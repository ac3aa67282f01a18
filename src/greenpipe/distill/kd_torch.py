"""Knowledge-distillation losses in PyTorch (registered by name in `LOSSES`; the losses
themselves are stated in `greenpipe.distill`)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

EPS = 1e-7


class HintonKD(nn.Module):
    """The ``hinton`` loss of `greenpipe.distill` (its equation and paper), as a torch module."""

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
    """Per-sample logit standardisation, the Z of `greenpipe.distill`'s ``logit_std``."""
    return (z - z.mean(dim=1, keepdim=True)) / (z.std(dim=1, keepdim=True) + EPS)


class LogitStandardKD(HintonKD):
    """The ``logit_std`` loss of `greenpipe.distill` (its equation and paper), as a torch module."""

    def forward(self, z_s: torch.Tensor, z_t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        hard = F.cross_entropy(z_s, y)
        return self.alpha * self.soft(zscore(z_s), zscore(z_t)) + (1.0 - self.alpha) * hard


LOSSES: dict[str, type[HintonKD]] = {"hinton": HintonKD, "logit_std": LogitStandardKD}


def build_loss(name: str, **kwargs: float) -> nn.Module:
    """The distillation loss registered as `name`, built from its kwargs."""
    if name not in LOSSES:
        raise ValueError(f"unknown distillation loss '{name}'; choose one of {sorted(LOSSES)}")
    return LOSSES[name](**kwargs)
