"""Which runtime runs a model and at which precision: the report's runtime and precision
dimensions."""

from __future__ import annotations

from typing import Any

# what runs a model without a `runtime` in its meta: the framework itself, or its int8 form
# (torch's int8 carries runtime "onnxruntime"; "eager" int8 is only in older records, of
# torch.ao's eager quantization)
NATIVE = {"torch": ("eager", "eager"), "tensorflow": ("keras", "tflite")}


def describe(backend: str, meta: dict[str, Any]) -> dict[str, str]:
    """{"runtime", "precision", "trained_precision"} of a model from its `.meta`: runtime
    "onnxruntime" (torch's int8 too), "aoti", "eager" (torch), "keras" or "tflite";
    inference precision "int8" (static or dynamic quantization) or "fp32"; the precision
    its weights were trained in (fp32, bf16 or fp16; a derived model keeps its parent's
    unless it was fine-tuned). Models saved before training precision existed were all
    trained in fp32."""
    quantized = bool(meta.get("quantized"))
    float_rt, int8_rt = NATIVE.get(backend, (backend, backend))
    runtime = meta.get("runtime") or (int8_rt if quantized else float_rt)
    return {
        "runtime": runtime,
        "precision": "int8" if quantized else "fp32",
        "trained_precision": meta.get("trained_precision", "fp32"),
    }
