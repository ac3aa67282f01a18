"""Inference runtimes (issue 14): ONNX Runtime fp32 and static int8 for both frameworks, one
suite parametrized over them; AOTInductor for torch; the quantization path free of
deprecation warnings; bad runtime arguments are one-line errors."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from greenpipe.backends import get_backend
from greenpipe.backends.base import NotApplicable
from greenpipe.config import DistillConfig, OptimizeConfig, validate_params
from greenpipe.optimize import onnx as ox

BACKENDS = ["torch", "tensorflow"]


@pytest.fixture(scope="module")
def digits():
    from greenpipe.data.sources import load_digits_images, stratified_split

    x, y = load_digits_images()
    return stratified_split(x, y, 0.15, 0.2, 42)


@pytest.fixture(scope="module", params=BACKENDS)
def trained(request, digits):
    """(backend, a KD-sized student trained a few epochs on the digits)."""
    from greenpipe.config import FitConfig

    be = get_backend(request.param)
    be.seed_everything(0)
    m = be.build(DistillConfig().model, digits["train"][0].shape[1:], 10)
    be.fit(m, digits, FitConfig(epochs=4, patience=5), desc="test")
    return be, m


def test_onnx_fp32_gives_the_framework_logits_and_round_trips(trained, digits, tmp_path):
    be, m = trained
    x = digits["test"][0][:100]
    rt = be.runtime(m, "onnxruntime", None)
    assert isinstance(rt, ox.OnnxModel) and rt.meta["runtime"] == "onnxruntime"
    np.testing.assert_allclose(be.predict(rt, x), be.predict(m, x), atol=1e-4)
    be.save(rt, tmp_path / "m.model")
    back = be.load(tmp_path / "m.model")
    assert isinstance(back, ox.OnnxModel) and back.meta == rt.meta
    np.testing.assert_array_equal(be.predict(back, x, 7), be.predict(rt, x))
    assert be.count_params(back) == be.count_params(m)
    # the file is a plain ONNX model any ONNX Runtime serves, its meta embedded
    assert ox.read_meta((tmp_path / "m.model").read_bytes())["layout"] in ("nchw", "nhwc")


def onnx_int8(be, m, calib: np.ndarray):
    """The model's ONNX Runtime static int8: torch's own int8 (`quantize`), Keras' as a
    runtime (its own int8 is TFLite)."""
    if be.name == "torch":
        return be.quantize(m, calib, OptimizeConfig(calibration_samples=len(calib)))
    return be.runtime(m, "onnxruntime", calib)


def test_onnx_static_int8_is_int8_calibrated_and_accurate(trained, digits, tmp_path):
    import onnx

    be, m = trained
    x, y = digits["test"]
    fp32 = be.runtime(m, "onnxruntime", None)
    q = onnx_int8(be, m, digits["train"][0][:256])
    assert q.meta["quantized"] == "static"
    ops = {n.op_type for n in onnx.load_model_from_string(q.model_bytes).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops  # QDQ: int8 weights and activations
    assert len(q.model_bytes) < 0.6 * len(fp32.model_bytes)
    acc_f = (be.predict(fp32, x).argmax(1) == y).mean()
    acc_q = (be.predict(q, x).argmax(1) == y).mean()
    assert acc_f > 0.8 and acc_q > acc_f - 0.03
    be.save(q, tmp_path / "q.model")
    np.testing.assert_array_equal(be.predict(be.load(tmp_path / "q.model"), x), be.predict(q, x))


def test_onnx_quantization_path_raises_no_deprecation_warning(trained, digits):
    """ONNX Runtime's quantizer, run with deprecation warnings as errors."""
    be, m = trained
    fp32 = be.runtime(m, "onnxruntime", None)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        warnings.simplefilter("error", FutureWarning)
        raw = ox.quantize_int8(fp32.model_bytes, digits["train"][0][:64], fp32.meta["layout"])
    assert len(raw) < len(fp32.model_bytes)


@pytest.mark.parametrize("mode", ["static", "dynamic"])
def test_torch_int8_is_onnx_runtime_s_with_no_deprecation_warning(digits, mode, tmp_path):
    """torch's int8 (what optimize makes) goes export -> ONNX Runtime's quantizer, whole
    path under deprecation warnings as errors: torch.ao's eager and FX quantization, which
    it replaced, warn in torch 2.13 (and were silenced)."""
    import onnx

    be, m = get_backend("torch"), _torch_student()
    calib = digits["train"][0][:64]
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        warnings.simplefilter("error", FutureWarning)
        q = be.quantize(m, calib, OptimizeConfig(quantization=mode))
    assert isinstance(q, ox.OnnxModel) and q.meta["quantized"] == mode
    ops = {n.op_type for n in onnx.load_model_from_string(q.model_bytes).graph.node}
    assert ops & ({"QuantizeLinear"} if mode == "static" else {"DynamicQuantizeLinear"})
    be.save(q, tmp_path / "q.model")
    back = be.load(tmp_path / "q.model")
    x = digits["test"][0][:50]
    np.testing.assert_array_equal(be.predict(back, x), be.predict(q, x))
    assert be.count_params(back) == be.count_params(m)
    with pytest.raises(NotApplicable, match="torch's int8 .* is ONNX Runtime's already"):
        be.runtime(m, "onnxruntime", calib)


def test_int8_without_calibration_samples_is_a_one_line_error(trained):
    be, m = trained
    fp32 = be.runtime(m, "onnxruntime", None)
    with pytest.raises(Exception, match="needs calibration samples; got none"):
        ox.quantize_int8(fp32.model_bytes, np.zeros((0, 8, 8, 1), np.float32), "nchw")


def test_a_runtime_the_framework_lacks_is_not_applicable_with_the_reason():
    tf = get_backend("tensorflow")
    with pytest.raises(NotApplicable, match="runtime 'aoti' is torch's"):
        tf.runtime(object(), "aoti", None)
    torch_be = get_backend("torch")
    with pytest.raises(NotApplicable, match="AOTInductor int8 needs PT2E"):
        torch_be.runtime(_torch_student(), "aoti", np.zeros((4, 8, 8, 1), np.float32))


def _torch_student():
    be = get_backend("torch")
    be.seed_everything(0)
    return be.build(DistillConfig().model, (8, 8, 1), 10)


def test_aoti_matches_eager_torch_on_one_channel_images(tmp_path):
    """AOTInductor's generated code assumes standard strides: a one-channel NHWC batch
    transposed without a real copy keeps an odd stride and gave wrong logits."""
    be = get_backend("torch")
    m = _torch_student()
    x = np.random.default_rng(0).random((16, 8, 8, 1), dtype=np.float32)
    rt = be.runtime(m, "aoti", None)
    np.testing.assert_allclose(be.predict(rt, x), be.predict(m, x), atol=1e-5)
    be.save(rt, tmp_path / "a.model")
    back = be.load(tmp_path / "a.model")
    assert back.meta["runtime"] == "aoti" and be.count_params(back) == be.count_params(m)
    np.testing.assert_allclose(be.predict(back, x[:1]), be.predict(m, x[:1]), atol=1e-5)


def test_optimize_runtimes_are_validated():
    assert OptimizeConfig().runtimes == ("onnxruntime", "aoti")
    with pytest.raises(Exception, match="lists a runtime twice"):
        OptimizeConfig(runtimes=["onnxruntime", "onnxruntime"])
    with pytest.raises(Exception, match="optimize.runtimes"):
        validate_params({"optimize": {"runtimes": ["tensorrt"]}})


def test_runtime_argument_is_a_one_line_usage_error():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).parents[3] / "pipelines" / "optimize.py"
    spec = importlib.util.spec_from_file_location("optimize_entry", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.runtime_arg("onnxruntime:int8=models/x.model") == (
        "onnxruntime",
        "int8",
        "models/x.model",
    )
    with pytest.raises(SystemExit, match="RUNTIME:PRECISION=PATH"):
        mod.runtime_arg("onnxruntime:bf16=models/x.model")
