"""Inference runtimes of a float torch model: ONNX (torch.export, then the dynamo ONNX
exporter) and an AOTInductor package (torch.export, then ahead-of-time compiled by Inductor
into a shared library).

TorchScript is not offered: torch 2.13 deprecates torch.jit.trace/script in favour of
torch.export and torch.compile.
"""

from __future__ import annotations

import contextlib
import copy
import io
import logging
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from greenpipe.backends.base import NotApplicable

MAX_BATCH = 1 << 16


def _example(model: nn.Module) -> tuple[torch.Tensor]:
    c = model.meta["input_shape"][-1]
    h, w = model.meta["input_shape"][:2]
    return (torch.zeros(2, c, h, w),)


def _batch_dim() -> dict:
    return {0: torch.export.Dim("batch", min=1, max=MAX_BATCH)}


@contextlib.contextmanager
def _quiet():
    """torch.export and the ONNX exporter print progress, log missing torchvision ops and warn
    about torch's own pytree internals (LeafSpec): none of it concerns the user's model."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch._export", "torch.export")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.filterwarnings("ignore", message=r".*LeafSpec.*", category=FutureWarning)
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def _why(exc: Exception) -> str:
    lines = [ln for ln in str(exc).splitlines() if ln.strip()]
    return (lines[0] if lines else exc.__class__.__name__)[:200]


def _cpu_copy(model: nn.Module) -> nn.Module:
    """A copy of `model` on the CPU in eval mode, for the exporters: `model.cpu()` would move
    the caller's model off its GPU, where the stage still trains and evaluates it."""
    m = copy.deepcopy(model).cpu().eval()
    m.meta = model.meta
    return m


def exported(model: nn.Module) -> torch.export.ExportedProgram:
    """The torch.export program of a float model on the CPU, dynamic in the batch size."""
    if model.meta.get("quantized"):
        raise NotApplicable("export the float model; eager int8 modules do not export")
    m = _cpu_copy(model)
    try:
        with _quiet():
            return torch.export.export(m, _example(m), dynamic_shapes=(_batch_dim(),))
    except Exception as exc:  # data-dependent control flow, unsupported ops
        raise NotApplicable(f"torch.export cannot capture the model: {_why(exc)}") from None


def to_onnx(model: nn.Module) -> bytes:
    """The fp32 ONNX graph (NCHW input, dynamic batch) of a float model, serialised."""
    m = _cpu_copy(model)
    try:
        with _quiet():
            prog = torch.onnx.export(
                m,
                _example(m),
                dynamo=True,
                dynamic_shapes=(_batch_dim(),),
                optimize=True,
                verbose=False,
                report=False,
            )
    except Exception as exc:  # the exporter's ConversionError and torch.export errors
        raise NotApplicable(f"torch.onnx.export cannot convert the model: {_why(exc)}") from None
    return prog.model_proto.SerializeToString(deterministic=True)


def aoti_package(model: nn.Module) -> bytes:
    """The AOTInductor package (.pt2: generated C++ compiled into a shared library, and the
    weights) of a float model; compiling needs a C++ compiler and takes tens of seconds."""
    ep = exported(model)
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        # Inductor imports torch.utils.mkldnn, whose ScriptModules warn that TorchScript is
        # deprecated: torch's own code, not the user's.
        warnings.filterwarnings("ignore", message=r".*torch\.jit.*", category=DeprecationWarning)
        pkg = Path(tmp) / "model.pt2"
        try:
            torch._inductor.aoti_compile_and_package(ep, package_path=str(pkg))
        except Exception as exc:  # a missing C++ compiler, an op Inductor cannot lower
            raise NotApplicable(f"AOTInductor cannot compile the model: {_why(exc)}") from None
        return pkg.read_bytes()


class AotiModel:
    """A loaded AOTInductor package: called on NCHW float tensors; carries `.meta`."""

    def __init__(self, package: bytes, meta: dict) -> None:
        self.package, self.meta = package, meta
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "model.pt2"
            path.write_bytes(package)
            self._run = torch._inductor.aoti_load_package(str(path))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """float32 logits for NHWC images in [0, 1]."""
        # a real copy: ascontiguousarray keeps the odd stride of a size-1 channel axis, which
        # eager kernels accept and AOTInductor's generated code (fixed strides) misreads
        xt = torch.from_numpy(np.asarray(x, np.float32).transpose(0, 3, 1, 2).copy(order="C"))
        with torch.inference_mode():
            return self._run(xt).float().numpy()
