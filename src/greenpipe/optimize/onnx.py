"""ONNX Runtime models: an fp32 ONNX graph exported from either framework, and its static int8
form made by ONNX Runtime's own quantizer (not torch's deprecated eager quantization).

A model file is a plain `.onnx` protobuf that any ONNX Runtime can serve; greenpipe's `.meta`
(architecture, input shape, classes, the layout the graph expects, params) travels in the
model's `metadata_props` under `META_KEY`, so the file describes itself.

Static int8 (`quantize_int8`): ONNX Runtime's pre-processing (shape inference, graph
optimisation), then QDQ quantization with uint8 activations and per-channel int8 weights
(U8S8, the x86 VNNI/AMX fast path), activation ranges calibrated (min/max) on the
calibration samples.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from greenpipe.errors import GreenpipeError

META_KEY = "greenpipe_meta"
RUNTIME = "onnxruntime"


def _to_layout(x: np.ndarray, layout: str) -> np.ndarray:
    """NHWC images -> the layout the graph reads ("nchw" for torch graphs, else as is)."""
    x = np.asarray(x, dtype=np.float32)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2) if layout == "nchw" else x)


def session(model_bytes: bytes):
    """An ONNX Runtime CPU inference session of a serialised model (all graph optimisations)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3  # errors only: ORT warns about unused initializers
    return ort.InferenceSession(model_bytes, opts, providers=["CPUExecutionProvider"])


class OnnxModel:
    """An ONNX Runtime model: the serialised graph (meta embedded), one session, `.meta`.

    Calling it runs one batch of NHWC images in [0, 1] and returns float32 logits."""

    def __init__(self, model_bytes: bytes, meta: dict[str, Any]) -> None:
        self.model_bytes, self.meta = model_bytes, meta
        self.session = session(model_bytes)
        self._input = self.session.get_inputs()[0].name

    def __call__(self, x: np.ndarray) -> np.ndarray:
        feed = {self._input: _to_layout(x, self.meta["layout"])}
        return np.asarray(self.session.run(None, feed)[0], dtype=np.float32)


def embed_meta(model_bytes: bytes, meta: dict[str, Any]) -> bytes:
    """The serialised model with `meta` (JSON) as its `metadata_props` entry `META_KEY`, and
    without the exporters' per-node metadata and doc strings (torch.onnx writes each op's
    Python stack trace: most of a small model's file, and paths of the machine)."""
    import onnx

    proto = onnx.load_model_from_string(model_bytes)
    for node in proto.graph.node:
        del node.metadata_props[:]
        node.doc_string = ""
    _short_names(proto.graph)
    keep = [p for p in proto.metadata_props if p.key != META_KEY]
    del proto.metadata_props[:]
    proto.metadata_props.extend(keep)
    proto.metadata_props.add(key=META_KEY, value=json.dumps(meta, sort_keys=True))
    return proto.SerializeToString(deterministic=True)


def _short_names(graph) -> None:
    """Name the graph's internal tensors t0, t1, ... and drop node names: the exporters' and
    the quantizer's long names (`onnx::Conv_12_quantized_zero_point`) are a third of a small
    int8 model's file. Graph inputs and outputs keep theirs; a graph with subgraphs (If,
    Loop) is left as it is."""
    if any(a.type in (a.GRAPH, a.GRAPHS) for n in graph.node for a in n.attribute):
        return
    keep = {v.name for v in graph.input} | {v.name for v in graph.output}
    names: dict[str, str] = {}

    def short(name: str) -> str:
        if not name or name in keep:
            return name
        return names.setdefault(name, f"t{len(names)}")

    for t in graph.initializer:
        t.name = short(t.name)
    for node in graph.node:
        node.name = ""
        node.input[:] = [short(n) for n in node.input]
        node.output[:] = [short(n) for n in node.output]
    for v in graph.value_info:
        v.name = short(v.name)


def read_meta(raw: bytes) -> dict[str, Any] | None:
    """The meta embedded by `embed_meta`, or None when `raw` is no ONNX model with one."""
    import onnx
    from google.protobuf.message import DecodeError

    try:
        proto = onnx.load_model_from_string(raw)
    except (DecodeError, ValueError, RuntimeError):
        return None
    if not proto.graph.node:
        return None
    for p in proto.metadata_props:
        if p.key == META_KEY:
            return json.loads(p.value)
    return None


def load(raw: bytes, path: Path) -> OnnxModel | None:
    """The ONNX model in `raw`, or None when `raw` is not a greenpipe ONNX file (an ONNX
    ModelProto starts with its ir_version field, byte 0x08; other files are not parsed)."""
    meta = read_meta(raw) if raw[:1] == b"\x08" else None
    if meta is None or meta.get("runtime") != RUNTIME:
        return None
    try:
        return OnnxModel(raw, meta)
    except Exception as exc:  # ORT raises its own exception types for invalid graphs
        raise GreenpipeError(
            f"cannot load model '{path}' (ONNX Runtime: {exc.__class__.__name__}); "
            "re-run the stage that writes it"
        ) from None


class _Calibration:
    """ONNX Runtime's CalibrationDataReader over calibration samples, one sample a feed."""

    def __init__(self, name: str, x: np.ndarray, layout: str) -> None:
        self._feeds = iter([{name: _to_layout(x[i : i + 1], layout)} for i in range(len(x))])

    def get_next(self):
        return next(self._feeds, None)


def quantize_int8(model_bytes: bytes, calib_x: np.ndarray, layout: str) -> bytes:
    """The static int8 (QDQ, U8S8, per-channel weights) form of an fp32 ONNX model, its
    activation ranges calibrated on `calib_x` (NHWC images in [0, 1])."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quant_pre_process,
        quantize_static,
    )

    if len(calib_x) == 0:
        raise GreenpipeError("static int8 needs calibration samples; got none")
    reader = type("Reader", (_Calibration, CalibrationDataReader), {})
    with tempfile.TemporaryDirectory() as tmp:
        src, pre, out = (Path(tmp) / n for n in ("fp32.onnx", "pre.onnx", "int8.onnx"))
        src.write_bytes(model_bytes)
        quant_pre_process(str(src), str(pre))
        name = session(pre.read_bytes()).get_inputs()[0].name
        quantize_static(
            str(pre),
            str(out),
            reader(name, calib_x, layout),
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            per_channel=True,
        )
        return out.read_bytes()


def quantize_dynamic_int8(model_bytes: bytes) -> bytes:
    """The dynamic int8 form of an fp32 ONNX model: int8 weights, activations quantized per
    batch at run time (no calibration)."""
    from onnxruntime.quantization import QuantType, quant_pre_process, quantize_dynamic

    with tempfile.TemporaryDirectory() as tmp:
        src, pre, out = (Path(tmp) / n for n in ("fp32.onnx", "pre.onnx", "int8.onnx"))
        src.write_bytes(model_bytes)
        quant_pre_process(str(src), str(pre))
        quantize_dynamic(str(pre), str(out), weight_type=QuantType.QInt8, per_channel=True)
        return out.read_bytes()


def onnx_model(
    fp32_bytes: bytes, meta: dict, calib_x: np.ndarray | None, mode: str = "static"
) -> OnnxModel:
    """The `OnnxModel` of an exported fp32 graph (`calib_x` None) or of its int8 form:
    static (`mode`, calibrated on `calib_x`) or dynamic; its meta embedded."""
    quantized = None if calib_x is None else mode
    meta = {**meta, "runtime": RUNTIME, "quantized": quantized}
    if quantized is None:
        raw = fp32_bytes
    elif quantized == "dynamic":
        raw = quantize_dynamic_int8(fp32_bytes)
    else:
        raw = quantize_int8(fp32_bytes, calib_x, meta["layout"])
    return OnnxModel(embed_meta(raw, meta), meta)
