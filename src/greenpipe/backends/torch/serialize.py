"""Compact files for int8 models.

torch.save of a quantized state_dict stores every scale and zero point as its own tensor
(hundreds of bytes each) and the packed weights with their float copies' metadata, which for
small models hides most of the int8 saving. Here the int8 weights are stored as plain int8
tensors, and scalars and per-channel scales go into a small metadata dict; loading rebuilds
the quantized tensors and goes through the model's own `load_state_dict`.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import torch

QDTYPES = {"torch.qint8": torch.qint8, "torch.quint8": torch.quint8, "torch.qint32": torch.qint32}


def _pack_tensor(key: str, t: torch.Tensor, tensors: dict, info: dict) -> None:
    if t.is_quantized:
        entry: dict[str, Any] = {"kind": "q", "dtype": str(t.dtype)}
        if t.qscheme() in (torch.per_channel_affine, torch.per_channel_symmetric):
            zps = t.q_per_channel_zero_points()
            tensors[f"{key}@scales"] = t.q_per_channel_scales().to(torch.float32)
            entry.update(
                scheme="channel", axis=t.q_per_channel_axis(), zps=zps.tolist() if zps.any() else 0
            )
        else:
            entry.update(scheme="tensor", scale=t.q_scale(), zp=t.q_zero_point())
        tensors[key], info[key] = t.int_repr().contiguous(), entry
    elif t.numel() == 1:
        info[key] = {"kind": "scalar", "dtype": str(t.dtype), "value": t.item()}
        if t.dim():
            info[key]["shape"] = list(t.shape)
    else:
        tensors[key], info[key] = t.detach().cpu().contiguous(), {"kind": "t"}


def pack_state(sd: OrderedDict) -> dict:
    """A quantized state_dict -> {"tensors", "info", "metadata"} (weights_only-loadable)."""
    tensors: dict[str, torch.Tensor] = {}
    info: dict[str, dict] = {}
    for key, v in sd.items():
        if isinstance(v, torch.dtype):
            info[key] = {"kind": "dtype", "value": str(v)}
        elif isinstance(v, tuple):
            info[key] = {"kind": "tuple", "n": len(v)}
            for i, t in enumerate(v):
                if t is None:
                    info[f"{key}#{i}"] = {"kind": "none"}
                else:
                    _pack_tensor(f"{key}#{i}", t, tensors, info)
        else:
            _pack_tensor(key, v, tensors, info)
    # Only non-default module versions matter to load_state_dict (quantized layers use them).
    meta = {k: dict(v) for k, v in getattr(sd, "_metadata", {}).items() if v.get("version", 1) != 1}
    return {"tensors": tensors, "info": info, "metadata": meta}


def _unpack_tensor(key: str, packed: dict) -> torch.Tensor | None:
    e = packed["info"][key]
    if e["kind"] == "none":
        return None
    if e["kind"] == "scalar":
        dtype = getattr(torch, e["dtype"].split(".")[1])
        return torch.tensor(e["value"], dtype=dtype).reshape(e.get("shape", []))
    t = packed["tensors"][key]
    if e["kind"] == "t":
        return t
    if e["scheme"] == "channel":
        scales = packed["tensors"][f"{key}@scales"].to(torch.float64)
        zps = torch.tensor(e["zps"]) if e["zps"] else torch.zeros(len(scales))
        return torch._make_per_channel_quantized_tensor(t, scales, zps.long(), e["axis"])
    return torch._make_per_tensor_quantized_tensor(t, e["scale"], e["zp"])


def unpack_state(packed: dict) -> OrderedDict:
    """The inverse of `pack_state`."""
    sd: OrderedDict = OrderedDict()
    for key, e in packed["info"].items():
        if "#" in key:
            continue
        if e["kind"] == "dtype":
            sd[key] = QDTYPES.get(e["value"], torch.float32)
        elif e["kind"] == "tuple":
            sd[key] = tuple(_unpack_tensor(f"{key}#{i}", packed) for i in range(e["n"]))
        else:
            sd[key] = _unpack_tensor(key, packed)
    sd._metadata = packed["metadata"]
    return sd
