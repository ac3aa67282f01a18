"""The Backend interface: what the stages need from a deep-learning framework."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from greenpipe.config import DistillConfig, FitConfig, ModelArch, OptimizeConfig

Splits = dict[str, tuple[np.ndarray, np.ndarray]]
Weights = dict[str, np.ndarray]
"""A float CNN's weights in one framework-neutral NumPy layout (see `Backend.get_weights`):
``conv{i}.w`` (out, in, kh, kw) and ``conv{i}.b`` (out,) for each conv block i;
``hidden.w`` (hidden, C, H, W), the dense layer over the last feature map of C channels and
H x W pixels, and ``hidden.b`` (hidden,); ``logits.w`` (classes, hidden), ``logits.b``."""


def feature_hw(input_shape: tuple[int, ...], n_convs: int) -> tuple[int, int]:
    """(H, W) of the last feature map: each conv block halves it while it is at least 2x2."""
    h, w = int(input_shape[0]), int(input_shape[1])
    for _ in range(n_convs):
        if min(h, w) >= 2:
            h, w = h // 2, w // 2
    return h, w


@dataclass
class History:
    """Per-epoch curves (one dict per epoch) and where early stopping left the model."""

    epochs: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0
    stopped_early: bool = False

    @property
    def best(self) -> dict[str, float]:
        return self.epochs[self.best_epoch - 1] if self.epochs else {}


class Backend(Protocol):
    """A framework's implementation of model building, fitting, distillation and export.

    Arrays cross the interface as NumPy: images (N, H, W, C) float32 in [0, 1], labels int64,
    logits (N, classes) float32. Models are the framework's own objects.
    """

    name: str

    def device(self) -> dict[str, Any]: ...

    def seed_everything(self, seed: int) -> None: ...

    def build(self, arch: ModelArch, input_shape: tuple[int, ...], n_classes: int) -> Any: ...

    def fit(self, model: Any, data: Splits, cfg: FitConfig, desc: str) -> History: ...

    def distill(
        self, student: Any, teacher: Any, data: Splits, cfg: DistillConfig, desc: str
    ) -> History: ...

    def predict(self, model: Any, x: np.ndarray, batch_size: int = 256) -> np.ndarray: ...

    def quantize(self, model: Any, calib_x: np.ndarray, cfg: OptimizeConfig) -> Any: ...

    def save(self, model: Any, path: Path) -> None: ...

    def load(self, path: Path) -> Any: ...

    def count_params(self, model: Any) -> int: ...

    def get_weights(self, model: Any) -> Weights:
        """A float model's weights as NumPy copies in the `Weights` layout."""
        ...

    def set_weights(self, model: Any, weights: Weights) -> None:
        """Load `Weights` into a float model built with the matching architecture."""
        ...

    def file_suffix(self, quantized: bool) -> str: ...
