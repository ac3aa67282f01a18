"""The TensorFlow/Keras backend: built-in graphs or user models, training, KD, TFLite int8.

Float models are `keras.Model`s carrying a `.meta` dict and are saved as one `.keras` file
(loaded with Keras' safe mode, so loading cannot run code; a user's model must use Keras'
own layers); `.meta` travels as an extra entry of the archive. Quantized models are
`TFLiteModel`s saved as one `.tflite` flatbuffer with `.meta`
embedded as TFLite metadata.
"""

from __future__ import annotations

import os
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow loads its C++ logging

import random
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from greenpipe.architectures import custom, graph
from greenpipe.architectures.zoo import graph_of
from greenpipe.backends.base import History, NotApplicable
from greenpipe.backends.tensorflow import export as rt
from greenpipe.backends.tensorflow import precision as pr
from greenpipe.backends.tensorflow import quantize as q
from greenpipe.backends.tensorflow import weights as nw
from greenpipe.backends.tensorflow.loops import cross_entropy, kernels, predictor, train_loop
from greenpipe.backends.tensorflow.models import build_graph, trainable_count
from greenpipe.backends.tensorflow.serialize import read_meta, save_keras
from greenpipe.config import ConfigError, DistillConfig, FitConfig, ModelSpec, OptimizeConfig
from greenpipe.distill.kd_tensorflow import build_loss
from greenpipe.errors import GreenpipeError
from greenpipe.optimize import onnx as ox

Model = keras.Model | q.TFLiteModel | ox.OnnxModel


def _scaled(policy: str) -> bool:
    """Whether training under `policy` needs loss scaling (fp16's narrow range; not bf16)."""
    return policy == "mixed_float16"


def _bad_file(path: Path, why: str) -> GreenpipeError:
    return GreenpipeError(f"cannot load model '{path}' ({why}); re-run the stage that writes it")


def grow_gpu_memory(config: Any = None) -> list:
    """Let TensorFlow take GPU memory as it needs it, not all of it at start-up (its default),
    which leaves none for another process: the peak-memory probes, torch, a second stage.
    Must run before TensorFlow first uses a GPU; `config` is tf.config (a stand-in in tests).
    Returns the GPUs."""
    config = tf.config if config is None else config
    gpus = config.list_physical_devices("GPU")
    for gpu in gpus:
        config.experimental.set_memory_growth(gpu, True)
    return gpus


class TensorFlowBackend:
    """Keras on a GPU when one is visible (memory taken as needed; train.precision auto
    trains in mixed float16 there), else the CPU. Models are built and saved in float32."""

    name = "tensorflow"

    def __init__(self) -> None:
        self._gpus = grow_gpu_memory()
        self._seed = 0

    def device(self) -> dict[str, Any]:
        gpu = bool(self._gpus)
        details = tf.config.experimental.get_device_details(self._gpus[0]) if gpu else {}
        return {
            "backend": "tensorflow",
            "framework_version": tf.__version__,
            "device": "gpu" if gpu else "cpu",
            "device_name": details.get("device_name", "gpu") if gpu else "cpu",
            "mixed_precision": gpu,
            "threads": tf.config.threading.get_intra_op_parallelism_threads() or os.cpu_count(),
        }

    def device_of(self, model: Model) -> str:
        """ "cpu" for TFLite and ONNX Runtime models, else "gpu" with a GPU, "cpu" without."""
        if isinstance(model, (q.TFLiteModel, ox.OnnxModel)):
            return "cpu"
        return "gpu" if self._gpus else "cpu"

    def seed_everything(self, seed: int) -> None:
        """Seed Python, NumPy, TensorFlow and Keras. Whether a fit's kernels are
        deterministic is its config's `deterministic` (see loops.kernels)."""
        self._seed = seed
        random.seed(seed)
        np.random.seed(seed % 2**32)
        keras.utils.set_random_seed(seed % 2**32)

    def build(self, spec: ModelSpec, input_shape: tuple[int, ...], n_classes: int) -> keras.Model:
        """The model of a model section: a built-in graph's functional model, or the user's
        own (arch custom); initial weights depend only on the seed, as in torch."""
        keras.utils.set_random_seed(self._seed % 2**32)
        shape, n = tuple(int(d) for d in input_shape), int(n_classes)
        if spec.arch == "custom":
            meta = {"custom": custom.spec_of(spec)}
            model = custom.build(meta["custom"], shape, n, "tensorflow")
            if not isinstance(model, keras.Model):
                raise ConfigError(
                    f"{spec.file}:{spec.custom.function} returned {type(model).__name__}, "
                    "not a keras.Model, for framework='tensorflow'"
                )
        else:
            g = graph_of(spec, shape, n)
            meta, model = {"graph": graph.to_json(g)}, build_graph(g, shape)
        meta = {"arch": spec.arch, **meta, "input_shape": list(shape), "n_classes": n}
        model.meta = {**meta, "quantized": None}
        return model

    def build_graph(self, g: graph.Graph, meta: dict) -> keras.Model:
        """A float model of layer graph `g` with the input shape and classes of `meta`."""
        keras.utils.set_random_seed(self._seed % 2**32)
        model = build_graph(g, tuple(meta["input_shape"]))
        model.meta = {**meta, "graph": graph.to_json(g), "quantized": None}
        model.meta.pop("params", None)
        return model

    def fit(self, model: keras.Model, data: dict, cfg: FitConfig, desc: str) -> History:
        policy = pr.policy_of(cfg.precision, bool(self._gpus))
        with pr.trained_in(model, policy) as m:
            hist = train_loop(m, data, cfg, self._seed, desc, cross_entropy, mixed=_scaled(policy))
        model.meta["trained_precision"] = pr.PRECISION_OF[policy]
        return hist

    def distill(self, student, teacher, data: dict, cfg: DistillConfig, desc: str) -> History:
        """KD (`cfg.loss`); the teacher's train-split logits are computed once (it is frozen)."""
        loss = build_loss(cfg.loss, temperature=cfg.temperature, alpha=cfg.alpha)
        with kernels(cfg.deterministic):  # the soft targets are part of the fit
            z_t = self.predict(teacher, data["train"][0], batch_size=512)
        policy = pr.policy_of(cfg.precision, bool(self._gpus))
        with pr.trained_in(student, policy) as m:
            hist = train_loop(m, data, cfg, self._seed, desc, loss, aux=z_t, mixed=_scaled(policy))
        student.meta["trained_precision"] = pr.PRECISION_OF[policy]
        return hist

    def predict(self, model: Model, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """Logits (N, classes) as float32 NumPy, in inference mode."""
        x = np.asarray(x, dtype=np.float32)
        run = model if isinstance(model, (q.TFLiteModel, ox.OnnxModel)) else predictor(model)
        outs = [
            np.asarray(run(x[i : i + batch_size]), dtype=np.float32)
            for i in range(0, len(x), batch_size)
        ]
        return np.concatenate(outs) if outs else np.zeros((0, model.meta["n_classes"]), np.float32)

    def quantize(self, model: keras.Model, calib_x: np.ndarray, cfg: OptimizeConfig):
        """int8 TFLite model calibrated on the first cfg.calibration_samples of calib_x."""
        if isinstance(model, q.TFLiteModel):
            raise GreenpipeError("the model is already int8; quantize the float .keras model")
        meta = {**model.meta, "quantized": cfg.quantization, "params": trainable_count(model)}
        try:
            flat = q.convert(
                pr.as_float32(model), calib_x[: cfg.calibration_samples], cfg.quantization
            )
        except GreenpipeError as exc:  # a user's layers the converter cannot lower: a reason
            if "custom" in model.meta:
                raise NotApplicable(str(exc)) from None
            raise
        return q.TFLiteModel(q.embed_meta(flat, meta), meta)

    def runtime(self, model: keras.Model, name: str, calib_x: np.ndarray | None) -> Model:
        """The float `model` in inference runtime `name` ("onnxruntime"): fp32, or static
        int8 calibrated on `calib_x` when it is given (`NotApplicable` where the runtime is
        not TensorFlow's or cannot convert the model). TFLite is `quantize`."""
        if name != "onnxruntime":
            raise NotApplicable(f"runtime '{name}' is torch's; TensorFlow runs onnxruntime, tflite")
        meta = {**model.meta, "params": trainable_count(model), "layout": "nhwc"}
        return ox.onnx_model(rt.to_onnx(model), meta, calib_x)

    def save(self, model: Model, path: Path) -> None:
        """One file: the TFLite flatbuffer for int8 models, else a byte-reproducible `.keras`
        archive (written under a `.keras` name, as Keras requires, then moved to `path`)."""
        path = Path(path)
        if isinstance(model, q.TFLiteModel):
            path.write_bytes(model.flatbuffer)
        elif isinstance(model, ox.OnnxModel):
            path.write_bytes(model.model_bytes)
        elif path.suffix == ".keras":
            save_keras(model, path)
        else:
            with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
                staged = Path(tmp) / "model.keras"
                save_keras(model, staged)
                os.replace(staged, path)

    def load(self, path: Path) -> Model:
        """The model in `path`, recognised by content (TFLite flatbuffer or Keras zip)."""
        path = Path(path)
        try:
            raw = path.read_bytes()
        except OSError as exc:
            why = "no such file" if isinstance(exc, FileNotFoundError) else exc.__class__.__name__
            raise _bad_file(path, why) from None
        if raw[4:8] == b"TFL3":  # the TFLite flatbuffer file identifier
            return self._load_tflite(path, raw)
        onnx_model = ox.load(raw, path)
        if onnx_model is not None:
            return onnx_model
        try:
            with tempfile.TemporaryDirectory() as tmp:
                # Keras picks the format by suffix: read the archive under a .keras name
                staged = Path(tmp) / "model.keras"
                staged.write_bytes(raw)
                model = keras.saving.load_model(staged, compile=False, safe_mode=True)
        except Exception as exc:  # zip, JSON, HDF5 or config errors
            why = f"not a readable .keras archive: {exc.__class__.__name__}"
            raise _bad_file(path, why) from None
        meta = read_meta(path) if isinstance(model, keras.Model) else None
        if meta is None:
            raise _bad_file(path, "not a greenpipe tensorflow model")
        model.meta = meta
        return model

    def _load_tflite(self, path: Path, raw: bytes) -> q.TFLiteModel:
        try:
            meta = q.read_meta(raw)
            model = q.TFLiteModel(raw, meta) if meta else None
        except Exception:  # struct/flatbuffer errors of a truncated or corrupt file
            raise _bad_file(path, "truncated or corrupt TFLite file") from None
        if model is None:
            raise _bad_file(path, "a TFLite file without greenpipe metadata")
        return model

    def count_params(self, model: Model) -> int:
        """Trainable weights and biases (batch norm: scale and shift, as torch counts them).
        An int8 model has as many as the float model it came from (quantization drops none),
        recorded in its `.meta` when it was converted."""
        if isinstance(model, (q.TFLiteModel, ox.OnnxModel)):
            return int(model.meta["params"])
        return trainable_count(model)

    def file_suffix(self, quantized: bool) -> str:
        return ".tflite" if quantized else ".keras"

    def get_weights(self, model: keras.Model) -> dict[str, np.ndarray]:
        return nw.get_weights(model)

    def set_weights(self, model: keras.Model, weights: dict[str, np.ndarray]) -> None:
        nw.set_weights(model, weights)
