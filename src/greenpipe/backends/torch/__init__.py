"""The PyTorch backend: built-in graphs or user models, training, KD, int8 quantization, and
inference runtimes (ONNX Runtime fp32/int8, AOTInductor)."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import safetensors.torch as st
import torch
import torch.nn.functional as F
from safetensors import safe_open
from torch import nn

from greenpipe.architectures import custom, graph
from greenpipe.architectures.zoo import graph_of
from greenpipe.backends.base import History, NotApplicable
from greenpipe.backends.torch import export as rt
from greenpipe.backends.torch import weights as nw
from greenpipe.backends.torch.loops import autocast_dtype, to_tensor, train_loop
from greenpipe.backends.torch.models import GraphNet
from greenpipe.config import ConfigError, DistillConfig, FitConfig, ModelSpec, OptimizeConfig
from greenpipe.distill.kd_torch import build_loss
from greenpipe.errors import GreenpipeError
from greenpipe.optimize import onnx as ox

FORMAT = "greenpipe-torch-v1"
GREENPIPE_KEY = "greenpipe"
# cuBLAS reads its workspace setting when it creates its first handle (the first matrix
# product on a GPU); deterministic cuBLAS kernels need one of its fixed-size workspaces
CUBLAS_DETERMINISTIC = ":4096:8"


class TorchBackend:
    """PyTorch on CUDA (with automatic mixed precision) when present, else the CPU."""

    name = "torch"

    def __init__(self) -> None:
        # before anything runs on a GPU, so that cuBLAS starts with it (see CUBLAS_DETERMINISTIC)
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_DETERMINISTIC)
        self._device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self._seed = 0

    def device(self) -> dict[str, Any]:
        cuda = self._device.type == "cuda"
        return {
            "backend": "torch",
            "framework_version": torch.__version__,
            "device": str(self._device),
            "device_name": torch.cuda.get_device_name(0) if cuda else "cpu",
            "mixed_precision": cuda,
            "threads": torch.get_num_threads(),
        }

    def device_of(self, model: Any) -> str:
        """ "cpu" for ONNX Runtime and AOTInductor models (built and run on the CPU), else
        the backend's device ("cuda" or "cpu")."""
        if isinstance(model, (ox.OnnxModel, rt.AotiModel)):
            return "cpu"
        return self._device.type

    def seed_everything(self, seed: int) -> None:
        """Seed Python, NumPy and torch (and every GPU). Whether a fit's kernels are
        deterministic is its config's `deterministic` (see loops.kernels)."""
        self._seed = seed
        random.seed(seed)
        np.random.seed(seed % 2**32)
        torch.manual_seed(seed)

    def build(self, spec: ModelSpec, input_shape: tuple[int, ...], n_classes: int) -> nn.Module:
        """The model of a model section: a built-in graph's `GraphNet`, or the user's own
        module (arch custom); initial weights depend only on the seed."""
        shape = tuple(int(d) for d in input_shape)
        if spec.arch == "custom":
            meta = {"custom": custom.spec_of(spec)}
        else:
            meta = {"graph": graph.to_json(graph_of(spec, shape, n_classes))}
        meta = {"arch": spec.arch, **meta, "input_shape": list(shape), "n_classes": int(n_classes)}
        return self._fresh(meta)

    def build_graph(self, g: graph.Graph, meta: dict) -> nn.Module:
        """A float model of layer graph `g` with the input shape and classes of `meta`."""
        return self._fresh({**meta, "graph": graph.to_json(g)})

    def _fresh(self, meta: dict) -> nn.Module:
        """A newly initialised float model of `meta` on the device, its weights a function
        of the seed alone."""
        torch.manual_seed(self._seed)
        return self._instantiate({**meta, "quantized": None}).to(self._device)

    def _instantiate(self, meta: dict) -> nn.Module:
        """The float module of `meta`, before any weights are loaded into it (seeding is
        build's business: loading leaves torch's global generator as it found it)."""
        shape = tuple(meta["input_shape"])
        if "graph" in meta:
            model = GraphNet(graph.from_json(meta["graph"]), shape)
        else:
            model = custom.build(meta["custom"], shape, meta["n_classes"], "torch")
            if not isinstance(model, nn.Module):
                raise ConfigError(
                    f"{meta['custom']['file']}:{meta['custom']['function']} returned "
                    f"{type(model).__name__}, not a torch.nn.Module, for framework='torch'"
                )
        model.meta = meta
        return model

    def fit(self, model: nn.Module, data: dict, cfg: FitConfig, desc: str) -> History:
        def ce(logits, _aux, y):
            return F.cross_entropy(logits, y)

        hist = train_loop(model, data, cfg, self._device, self._seed, desc, ce)
        model.meta["trained_precision"] = self._trained_in(cfg)
        return hist

    def _trained_in(self, cfg: FitConfig) -> str:
        """The precision `cfg.precision` trains in here ("auto" resolved): fp32, bf16 or fp16."""
        dtype = autocast_dtype(cfg.precision, self._device)
        return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype]

    def distill(self, student, teacher, data: dict, cfg: DistillConfig, desc: str) -> History:
        loss = build_loss(cfg.loss, temperature=cfg.temperature, alpha=cfg.alpha)
        teacher = teacher.to(self._device).eval()

        def teacher_logits(xb: torch.Tensor) -> torch.Tensor:
            with torch.no_grad():
                return teacher(xb).float()

        hist = train_loop(student, data, cfg, self._device, self._seed, desc, loss, teacher_logits)
        student.meta["trained_precision"] = self._trained_in(cfg)
        return hist

    def predict(self, model: nn.Module, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """Logits as float32 NumPy, in eval mode, without gradients."""
        if isinstance(model, (ox.OnnxModel, rt.AotiModel)):
            outs = [model(x[i : i + batch_size]) for i in range(0, len(x), batch_size)]
            return np.concatenate(outs) if outs else np.zeros((0, model.meta["n_classes"]))
        dev = self._device
        model.eval()
        outs = []
        with torch.inference_mode():
            for i in range(0, len(x), batch_size):
                outs.append(model(to_tensor(x[i : i + batch_size], dev)).float().cpu().numpy())
        return np.concatenate(outs) if outs else np.zeros((0, model.meta["n_classes"]), np.float32)

    def quantize(self, model: nn.Module, calib_x: np.ndarray, cfg: OptimizeConfig) -> Any:
        """int8 by ONNX Runtime's quantizer, run in ONNX Runtime: static (QDQ, calibrated on
        the first `cfg.calibration_samples`) or dynamic. torch's own eager and FX int8
        (torch.ao.quantization) are deprecated in torch 2.13, and their successor (PT2E)
        lives in torchao (README: "int8 in PyTorch")."""
        meta = {**model.meta, "params": self.count_params(model), "layout": "nchw"}
        calib = calib_x[: cfg.calibration_samples]
        return ox.onnx_model(rt.to_onnx(model), meta, calib, mode=cfg.quantization)

    def runtime(self, model: nn.Module, name: str, calib_x: np.ndarray | None) -> Any:
        """The float `model` in inference runtime `name` ("onnxruntime", "aoti") in fp32;
        int8 (`calib_x` given) is `NotApplicable`: torch's int8 is ONNX Runtime's already
        (`quantize`), and AOTInductor int8 needs PT2E from torchao."""
        meta = {**model.meta, "params": self.count_params(model), "layout": "nchw"}
        if name == "onnxruntime":
            if calib_x is not None:
                raise NotApplicable(
                    "torch's int8 (optimize.quantization) is ONNX Runtime's already: "
                    "see student_kd_int8"
                )
            return ox.onnx_model(rt.to_onnx(model), meta, None)
        if name == "aoti":
            if calib_x is not None:
                raise NotApplicable(
                    "AOTInductor int8 needs PT2E (torchao), whose import of torch._inductor "
                    "warns that TorchScript is deprecated in torch 2.13; int8 runs in ONNX Runtime"
                )
            meta = {**meta, "runtime": "aoti", "quantized": None}
            return rt.AotiModel(rt.aoti_package(model), meta)
        raise NotApplicable(f"runtime '{name}' is not one of torch's (onnxruntime, aoti)")

    def save(self, model: nn.Module, path: Path) -> None:
        """One safetensors file: tensors, plus format, architecture and int8 layout as metadata.

        safetensors holds no pickled code, so loading a model file cannot run code; the
        exceptions are runtime models: an ONNX model is its own `.onnx` file (meta embedded),
        and an AOTInductor model holds compiled native code (its package as a uint8 tensor),
        which loading runs: load only AOTInductor files your own pipeline made.
        """
        if isinstance(model, ox.OnnxModel):
            Path(path).write_bytes(model.model_bytes)
            return
        if isinstance(model, rt.AotiModel):
            pkg = torch.frombuffer(bytearray(model.package), dtype=torch.uint8)
            header = {"format": FORMAT, "meta": json.dumps(model.meta)}
            blob = {GREENPIPE_KEY: json.dumps(header, sort_keys=True)}
            Path(path).write_bytes(st.save({"aoti_package": pkg}, metadata=blob))
            return
        tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        header = {"format": FORMAT, "meta": json.dumps(model.meta)}
        # One metadata entry: safetensors writes its metadata map in hash order, which differs
        # between processes, so several entries would make the same model differ byte for byte.
        blob = {GREENPIPE_KEY: json.dumps(header, sort_keys=True)}
        Path(path).write_bytes(st.save(tensors, metadata=blob))

    def load(self, path: Path) -> nn.Module:
        try:
            raw = Path(path).read_bytes()
        except OSError as exc:
            raise GreenpipeError(
                f"cannot load model '{path}' ({exc.__class__.__name__}); "
                "re-run the stage that writes it"
            ) from None
        onnx_model = ox.load(raw, Path(path))
        if onnx_model is not None:
            return onnx_model
        try:
            tensors = st.load(raw)
            with safe_open(path, framework="pt") as f:
                header = f.metadata() or {}
            if GREENPIPE_KEY in header:
                header = json.loads(header[GREENPIPE_KEY])
        except Exception as exc:
            raise GreenpipeError(
                f"cannot load model '{path}' ({exc.__class__.__name__}); "
                "re-run the stage that writes it"
            ) from None
        if header.get("format") != FORMAT:
            raise GreenpipeError(f"'{path}' is not a greenpipe torch model; re-run its stage")
        meta = json.loads(header["meta"])
        if meta.get("runtime") == "aoti":
            return rt.AotiModel(tensors["aoti_package"].numpy().tobytes(), meta)
        if meta.get("quantized"):  # files of greenpipe before torch's int8 moved to ONNX Runtime
            raise GreenpipeError(
                f"'{path}' holds a torch.ao eager int8 model, which greenpipe no longer reads "
                "(deprecated in torch 2.13); re-run the optimize stage"
            )
        with torch.random.fork_rng(devices=[]):  # the module's init draws are thrown away
            model = self._instantiate({**meta, "quantized": None})
        model.load_state_dict(tensors)
        model = model.to(self._device)
        model.meta = meta
        return model.eval()

    def count_params(self, model: nn.Module) -> int:
        """Trainable weights and biases, counted on the float model (batch norm: scale and
        shift); a runtime model's count (int8 included) is its float parent's."""
        if "runtime" in model.meta:
            return int(model.meta["params"])
        return sum(p.numel() for p in model.parameters() if p.requires_grad)

    def file_suffix(self, quantized: bool) -> str:
        return ".safetensors"

    def get_weights(self, model: nn.Module) -> dict[str, np.ndarray]:
        return nw.get_weights(model)

    def set_weights(self, model: nn.Module, weights: dict[str, np.ndarray]) -> None:
        nw.set_weights(model, weights)
