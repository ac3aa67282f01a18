"""The Backend interface: what the stages need from a deep-learning framework."""

from __future__ import annotations

from collections.abc import Callable
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


def no_deterministic_kernel(op: str, device: str) -> GreenpipeError:
    """The one-line error of a strict (`deterministic: true`) fit that reached an op without
    a deterministic kernel on `device`: both backends raise it."""
    return GreenpipeError(
        f"{op} has no deterministic kernel on {device}, and deterministic training is on; set "
        "deterministic: false in the params section that trains this model (train or distill) "
        "for fast kernels whose results may differ between runs"
    )


BN_KEYS = ("gamma", "beta", "mean", "var")
WEIGHTED_OPS = ("conv", "dwconv", "dense", "bn")
"""The graph ops whose layers carry `Weights` entries."""


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


def weighted_nodes(meta: dict[str, Any], is_float: bool) -> list[tuple[Any, Any]]:
    """(node, the (C, H, W) of the flattened map it reads or None) for each node of a model's
    graph that carries `Weights`, in graph order: the walk behind both backends'
    `get_weights` and `set_weights`. Only a float built-in model has the neutral layout; for
    an int8 model (`is_float` false) or a user's own one (no graph in `meta`) this raises a
    one-line error instead."""
    if not is_float or "graph" not in meta:
        what = "an int8 model" if not is_float else "a custom model"
        raise GreenpipeError(f"weights can only be read from a float built-in model, not {what}")
    from greenpipe.architectures.graph import from_json

    graph = from_json(meta["graph"])
    maps = dense_map_shape(graph, tuple(meta["input_shape"]))
    return [(node, maps.get(node.name)) for node in graph if node.op in WEIGHTED_OPS]


@dataclass
class History:
    """Per-epoch curves (one dict per epoch) and where early stopping left the model."""

    epochs: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0
    stopped_early: bool = False

    @property
    def best(self) -> dict[str, float]:
        return self.epochs[self.best_epoch - 1] if self.epochs else {}


class EarlyStopping:
    """Early stopping on val loss, the rule of both backends' training loops.

    The best epoch is the one with the lowest val loss, where lower means by more than
    `min_delta`; training stops after `patience` epochs in a row without such an improvement,
    and `restore` puts the best epoch's weights back. The weights are the framework's own:
    `snapshot()` returns a copy of them (taken only when an epoch improves) and `load(copy)`
    writes one back into the model. `update` is called once an epoch, after its val loss is
    known; the epochs it counts are numbered from 1, as `History.epochs` is.
    """

    def __init__(
        self,
        patience: int,
        snapshot: Callable[[], Any],
        load: Callable[[Any], Any],
        min_delta: float = 1e-6,
    ) -> None:
        self.patience, self.min_delta = patience, min_delta
        self._snapshot, self._load = snapshot, load
        self.best_loss, self.best_epoch, self.epoch, self.waited = float("inf"), 0, 0, 0
        self.stopped = False
        self._best: Any = None

    def update(self, val_loss: float) -> bool:
        """Record one epoch's val loss; whether training should stop now."""
        self.epoch += 1
        if val_loss < self.best_loss - self.min_delta:
            self.best_loss, self.best_epoch, self.waited = val_loss, self.epoch, 0
            self._best = None  # free the old copy before taking the new one
            self._best = self._snapshot()
        else:
            self.waited += 1
            self.stopped = self.waited >= self.patience
        return self.stopped

    def restore(self, hist: History) -> None:
        """Load the best epoch's weights (if any epoch ran) and note in `hist` where training
        left the model."""
        if self._best is not None:
            self._load(self._best)
        hist.best_epoch, hist.stopped_early = self.best_epoch, self.stopped


class Backend(Protocol):
    """A framework's implementation of model building, fitting, distillation and export.

    Arrays cross the interface as NumPy: images (N, H, W, C) float32 in [0, 1], labels int64,
    logits (N, classes) float32. Models are the framework's own objects.
    """

    name: str

    def device(self) -> dict[str, Any]: ...

    def device_of(self, model: Any) -> str:
        """Where `predict` runs `model`: the framework's device ("cuda", "gpu" or "cpu") for
        its own models, "cpu" for a runtime's (ONNX Runtime, AOTInductor, TFLite run on the
        CPU here)."""
        ...

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
        """A float built-in model's weights, biases and batch-norm statistics, as NumPy
        copies in the `Weights` layout (see `weighted_nodes` for other models)."""
        ...

    def set_weights(self, model: Any, weights: Weights) -> None:
        """Copy `Weights` into a float built-in model of the matching architecture (the
        shapes must match it exactly)."""
        ...

    def file_suffix(self, quantized: bool) -> str: ...
