"""The Backend interface: what the stages need from a deep-learning framework."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from greenpipe.config import DistillConfig, FitConfig, ModelSpec, OptimizeConfig
from greenpipe.errors import GreenpipeError

Splits = dict[str, tuple[np.ndarray, np.ndarray]]
Weights = dict[str, np.ndarray]
"""A float built-in model's weights in one framework-neutral NumPy layout, keyed by graph
node (see `Backend.get_weights`): ``<node>.w`` and ``<node>.b`` of a conv (out, in, kh, kw),
a depthwise conv (C, 1, kh, kw) or a dense layer (out, in); a dense layer over a flattened
feature map of C channels and H x W pixels has ``.w`` (out, C, H, W); a batch norm has
``.gamma``, ``.beta``, ``.mean`` and ``.var`` (C,)."""


class NotApplicable(GreenpipeError):
    """An optimization that cannot handle this model (a user's own model without a known
    structure, or one its quantizer cannot trace); the message is the reason, reported per
    model instead of failing the stage."""


BN_KEYS = ("gamma", "beta", "mean", "var")


def dense_map_shape(graph, input_shape: tuple[int, ...]) -> dict[str, tuple[int, int, int]]:
    """{dense node: (C, H, W)} for dense layers that read a flattened (H, W, C) feature map."""
    from greenpipe.architectures.graph import shapes

    shp, by_name, out = shapes(graph, input_shape), {n.name: n for n in graph}, {}
    for node in graph:
        src = by_name.get(node.inputs[0]) if node.inputs else None
        while src is not None and src.op == "dropout":
            src = by_name.get(src.inputs[0]) if src.inputs else None
        if node.op == "dense" and src is not None and src.op == "flatten":
            h, w, c = shp[src.inputs[0]] if src.inputs else tuple(input_shape)
            out[node.name] = (c, h, w)
    return out


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

    def build(self, spec: ModelSpec, input_shape: tuple[int, ...], n_classes: int) -> Any: ...

    def build_graph(self, graph: Any, meta: dict[str, Any]) -> Any:
        """A float model of a layer graph, with the input shape and classes of `meta`."""
        ...

    def fit(self, model: Any, data: Splits, cfg: FitConfig, desc: str) -> History: ...

    def distill(
        self, student: Any, teacher: Any, data: Splits, cfg: DistillConfig, desc: str
    ) -> History: ...

    def predict(self, model: Any, x: np.ndarray, batch_size: int = 256) -> np.ndarray: ...

    def quantize(self, model: Any, calib_x: np.ndarray, cfg: OptimizeConfig) -> Any: ...

    def runtime(self, model: Any, name: str, calib_x: np.ndarray | None) -> Any:
        """The float `model` in inference runtime `name` (see `RUNTIMES`): fp32, or static
        int8 calibrated on `calib_x` when it is given; `NotApplicable` with the reason where
        this framework, runtime or model cannot make it. The result works with `predict`,
        `save`, `load` and `count_params` like any other model."""
        ...

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
