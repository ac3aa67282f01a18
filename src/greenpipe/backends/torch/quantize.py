"""int8 post-training quantization: static (convolutions and dense layers) or dynamic (dense)."""

from __future__ import annotations

import copy
import warnings

import numpy as np
import torch
from torch import nn
from torch.ao import quantization as tq

from greenpipe.backends.base import NotApplicable
from greenpipe.backends.torch.loops import to_tensor


def quant_engine() -> str:
    """The int8 kernel library for this CPU: fbgemm on x86, qnnpack on ARM."""
    engines = torch.backends.quantized.supported_engines
    return "fbgemm" if "fbgemm" in engines else "qnnpack"


def static_int8(model: nn.Module, calib_x: np.ndarray) -> nn.Module:
    """Fuse conv/linear+ReLU, calibrate activation ranges on `calib_x`, convert to int8.

    Built-in graphs go through eager mode with their fusion lists; users' own modules, for
    which no fusion list exists, through FX graph mode (symbolic tracing)."""
    if not hasattr(model, "fusion_groups"):
        return _fx_int8(model, calib_x, calibrate=True)
    engine = quant_engine()
    torch.backends.quantized.engine = engine
    m = copy.deepcopy(model).cpu().eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = tq.fuse_modules(m, m.fusion_groups())
        m.qconfig = tq.get_default_qconfig(engine)
        tq.prepare(m, inplace=True)
        with torch.no_grad():
            x = to_tensor(calib_x, torch.device("cpu"))
            for i in range(0, len(x), 256):
                m(x[i : i + 256])
        tq.convert(m, inplace=True)
    return m


def dynamic_int8(model: nn.Module) -> nn.Module:
    """int8 weights for Linear layers; activations quantized on the fly."""
    torch.backends.quantized.engine = quant_engine()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return tq.quantize_dynamic(copy.deepcopy(model).cpu().eval(), {nn.Linear}, torch.qint8)


def _fx_int8(model: nn.Module, calib_x: np.ndarray, calibrate: bool) -> nn.Module:
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    engine = quant_engine()
    torch.backends.quantized.engine = engine
    m = copy.deepcopy(model).cpu().eval()
    x = to_tensor(calib_x, torch.device("cpu"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            m = prepare_fx(m, get_default_qconfig_mapping(engine), example_inputs=(x[:1],))
        except Exception as exc:  # torch.fx tracing errors of dynamic control flow
            why = str(exc).splitlines()[0][:160] if str(exc) else exc.__class__.__name__
            raise NotApplicable(f"FX graph mode cannot trace the model: {why}") from None
        if calibrate:
            with torch.no_grad():
                for i in range(0, len(x), 256):
                    m(x[i : i + 256])
        return convert_fx(m)


def skeleton(model: nn.Module, mode: str, calib_x: np.ndarray) -> nn.Module:
    """An untrained int8 model with the right structure, to load a quantized state_dict into
    (`calib_x`: one input of the model's shape, for FX tracing)."""
    if mode == "dynamic":
        return dynamic_int8(model)
    if not hasattr(model, "fusion_groups"):
        return _fx_int8(model, calib_x, calibrate=False)
    engine = quant_engine()
    torch.backends.quantized.engine = engine
    m = copy.deepcopy(model).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = tq.fuse_modules(m, m.fusion_groups())
        m.qconfig = tq.get_default_qconfig(engine)
        tq.prepare(m, inplace=True)
        tq.convert(m, inplace=True)
    return m
