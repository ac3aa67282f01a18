"""greenpipe.backends.tensorflow: the Keras/TFLite implementation of the Backend interface."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import zipfile

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from greenpipe import artifacts  # noqa: E402
from greenpipe.architectures.graph import param_count  # noqa: E402
from greenpipe.architectures.zoo import graph_of  # noqa: E402
from greenpipe.backends import available_backends, get_backend  # noqa: E402
from greenpipe.config import (  # noqa: E402
    DistillConfig,
    FitConfig,
    MobileNetV2Arch,
    ModelArch,
    ModelSpec,
    OptimizeConfig,
    ResNetArch,
)
from greenpipe.distill.kd_tensorflow import build_loss  # noqa: E402
from greenpipe.errors import GreenpipeError  # noqa: E402

SHAPE, CLASSES = (8, 8, 1), 3
ARCH = ModelSpec(cnn=ModelArch(channels=(16, 32), hidden=128, dropout=0.1))  # ~22k params
TINY = ModelSpec(cnn=ModelArch(channels=(8,), hidden=16, dropout=0.2))


def _images(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Noise in [0, 0.3] plus a bright 4x4 quadrant whose position is the class."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, CLASSES, n).astype(np.int64)
    x = rng.uniform(0.0, 0.3, (n, *SHAPE)).astype(np.float32)
    for i, c in enumerate(y):
        r, col = divmod(int(c), 2)
        x[i, 4 * r : 4 * r + 4, 4 * col : 4 * col + 4, 0] += 0.6
    return x, y


@pytest.fixture(scope="module")
def be():
    return get_backend("tensorflow")


@pytest.fixture(scope="module")
def data():
    return {"train": _images(200, 0), "val": _images(60, 1), "test": _images(60, 2)}


@pytest.fixture(scope="module")
def trained(be, data):
    be.seed_everything(0)
    model = be.build(ARCH, SHAPE, CLASSES)
    hist = be.fit(model, data, FitConfig(epochs=8, batch_size=32, patience=3), desc="test fit")
    return model, hist


def _acc(logits: np.ndarray, y: np.ndarray) -> float:
    return float((logits.argmax(1) == y).mean())


# --- build, registry ------------------------------------------------------------------------


def test_registered_and_named(be):
    assert "tensorflow" in available_backends()
    assert be.name == "tensorflow"
    assert be.file_suffix(True) == ".tflite" and be.file_suffix(False) == ".keras"
    assert be.device()["device"] in ("cpu", "gpu")


@pytest.mark.parametrize(
    "arch",
    [
        ARCH,
        TINY,
        ModelSpec(cnn=ModelArch(channels=(4, 8, 8, 4), hidden=8, dropout=0.0)),
        ModelSpec(arch="mlp"),
        ModelSpec(arch="resnet"),  # ResNet-20: 0.27 M parameters in He et al., table 6
        ModelSpec(arch="resnet", resnet=ResNetArch(depth=14, width=24)),
        ModelSpec(arch="mobilenetv2"),
        ModelSpec(arch="mobilenetv2", mobilenetv2=MobileNetV2Arch(width=0.35, last_channels=64)),
    ],
    ids=lambda spec: f"{spec.arch}-{spec.settings}",
)
def test_build_matches_torch_params_and_meta(be, arch):
    """The same architecture has the same layers and parameter count in both frameworks,
    and both agree with the count computed on the layer graph."""
    torch_be = get_backend("torch")
    ref = torch_be.build(arch, SHAPE, CLASSES)
    model = be.build(arch, SHAPE, CLASSES)
    n = param_count(graph_of(arch, SHAPE, CLASSES), SHAPE)
    assert be.count_params(model) == torch_be.count_params(ref) == n
    assert dict(model.meta) == ref.meta
    if arch == ModelSpec(arch="resnet"):  # ResNet-20 with projection shortcuts on CIFAR-10
        assert param_count(graph_of(arch, (32, 32, 3), 10), (32, 32, 3)) == 272_474


# --- fit, determinism -----------------------------------------------------------------------


def test_fit_learns_and_reports_history(be, trained, data):
    model, hist = trained
    assert [e["epoch"] for e in hist.epochs] == list(range(1, len(hist.epochs) + 1))
    assert set(hist.epochs[0]) == {"epoch", "train_loss", "val_loss", "val_acc"}
    assert hist.epochs[-1]["val_loss"] < hist.epochs[0]["val_loss"]
    assert hist.best["val_acc"] > 0.9
    logits = be.predict(model, data["test"][0])
    assert logits.dtype == np.float32 and logits.shape == (60, CLASSES)
    assert _acc(logits, data["test"][1]) > 0.9


def test_early_stopping_restores_the_best_epoch(be, data):
    rng = np.random.default_rng(3)  # random labels: val loss rises as the model memorises
    noisy = {k: (x, rng.integers(0, CLASSES, len(y))) for k, (x, y) in data.items()}
    be.seed_everything(1)
    model = be.build(
        ModelSpec(cnn=ModelArch(channels=(16,), hidden=64, dropout=0.0)), SHAPE, CLASSES
    )
    hist = be.fit(model, noisy, FitConfig(epochs=40, batch_size=16, lr=0.01, patience=2), "es")
    losses = [e["val_loss"] for e in hist.epochs]
    assert hist.stopped_early and len(hist.epochs) == hist.best_epoch + 2
    assert hist.best_epoch == int(np.argmin(losses)) + 1
    logits = be.predict(model, noisy["val"][0])
    ce = tf.nn.sparse_softmax_cross_entropy_with_logits(noisy["val"][1], logits).numpy().mean()
    assert ce == pytest.approx(hist.best["val_loss"], rel=1e-4)


def _seeded_run(be, data, seed: int) -> tuple[np.ndarray, list]:
    be.seed_everything(seed)
    model = be.build(TINY, SHAPE, CLASSES)
    hist = be.fit(model, data, FitConfig(epochs=3, batch_size=16, weight_decay=1e-3), "det")
    return be.predict(model, data["test"][0]), hist.epochs


def test_seeded_fits_are_identical(be, data):
    a, b, c = (_seeded_run(be, data, s) for s in (5, 5, 6))
    assert np.array_equal(a[0], b[0]) and a[1] == b[1]
    assert not np.array_equal(a[0], c[0])


# --- distillation ---------------------------------------------------------------------------


def test_distill_trains_the_student(be, trained, data):
    teacher, _ = trained
    be.seed_everything(0)
    student = be.build(TINY, SHAPE, CLASSES)
    cfg = DistillConfig(epochs=10, batch_size=32, lr=0.005, patience=3, model=TINY)
    hist = be.distill(student, teacher, data, cfg, desc="test kd")
    assert 1 <= hist.best_epoch <= len(hist.epochs)
    assert hist.epochs[-1]["val_loss"] < hist.epochs[0]["val_loss"]
    assert _acc(be.predict(student, data["test"][0]), data["test"][1]) > 0.8


def test_kd_loss_math():
    rng = np.random.default_rng(0)
    z_s, z_t = rng.normal(size=(2, 8, 5)).astype(np.float32) * 3
    y = rng.integers(0, 5, 8)
    ce = tf.nn.sparse_softmax_cross_entropy_with_logits(y, z_s).numpy().mean()
    assert float(build_loss("hinton", temperature=4, alpha=0)(z_s, z_t, y)) == pytest.approx(ce)
    assert float(build_loss("hinton", temperature=4, alpha=1)(z_s, z_s, y)) == pytest.approx(
        0.0, abs=1e-6
    )

    def log_softmax(z):
        z = z - z.max(1, keepdims=True)
        return z - np.log(np.exp(z).sum(1, keepdims=True))

    t, alpha = 2.5, 0.3
    lp_s, lp_t = log_softmax(z_s / t), log_softmax(z_t / t)
    kl = (np.exp(lp_t) * (lp_t - lp_s)).sum(1).mean()
    want = alpha * t**2 * kl + (1 - alpha) * ce
    got = float(build_loss("hinton", temperature=t, alpha=alpha)(z_s, z_t, y))
    assert got == pytest.approx(want, rel=1e-5)
    with pytest.raises(ValueError, match="unknown distillation loss"):
        build_loss("fitnets")


# --- quantization, save/load ----------------------------------------------------------------


@pytest.mark.parametrize("mode", ["static", "dynamic"])
def test_quantize_is_small_accurate_and_round_trips(be, trained, data, tmp_path, mode):
    model, _ = trained
    x, y = data["test"]
    float_path = tmp_path / f"m{be.file_suffix(False)}"
    q_path = tmp_path / f"q{be.file_suffix(True)}"
    float_size = artifacts.save_model(be, model, float_path)
    qm = be.quantize(model, data["train"][0], OptimizeConfig(quantization=mode))
    q_size = artifacts.save_model(be, qm, q_path)
    assert q_size <= float_size / 3
    assert qm.meta == {**model.meta, "quantized": mode, "params": be.count_params(model)}
    assert be.count_params(qm) == be.count_params(model)
    q_logits = be.predict(qm, x)
    assert q_logits.dtype == np.float32 and q_logits.shape == (len(x), CLASSES)
    assert _acc(q_logits, y) >= _acc(be.predict(model, x), y) - 0.05
    # batch size 1 (latency) and then a larger batch resize the interpreter consistently
    one = np.concatenate([be.predict(qm, x[i : i + 1], batch_size=1) for i in range(5)])
    np.testing.assert_allclose(one, be.predict(qm, x[:5]), atol=1e-5)
    loaded = be.load(q_path)
    assert loaded.meta == qm.meta and be.count_params(loaded) == be.count_params(model)
    assert np.array_equal(be.predict(loaded, x), q_logits)
    q_path.write_bytes(q_path.read_bytes()[: q_size // 2])
    with pytest.raises(GreenpipeError, match="truncated or corrupt"):
        be.load(q_path)


def test_static_conversion_falls_back_to_float_io_then_fails_in_one_line(monkeypatch):
    from greenpipe.backends.tensorflow import quantize

    calls = []

    class FakeConverter:
        def __init__(self, int8_io: bool, ok: bool) -> None:
            self.int8_io, self.ok = int8_io, ok

        def convert(self) -> bytes:
            calls.append(self.int8_io)
            if self.int8_io or not self.ok:
                raise RuntimeError("unsupported op\n  at line 1")
            return b"flatbuffer"

    monkeypatch.setattr(quantize, "_converter", lambda m, x, mode, io: FakeConverter(io, True))
    assert quantize.convert(None, None, "static") == b"flatbuffer" and calls == [True, False]
    monkeypatch.setattr(quantize, "_converter", lambda m, x, mode, io: FakeConverter(io, False))
    with pytest.raises(GreenpipeError, match="RuntimeError: unsupported op at line 1.*dynamic"):
        quantize.convert(None, None, "static")


def test_quantizing_an_int8_model_again_raises(be, trained, data):
    qm = be.quantize(trained[0], data["train"][0], OptimizeConfig(quantization="dynamic"))
    with pytest.raises(GreenpipeError, match="already int8"):
        be.quantize(qm, data["train"][0], OptimizeConfig())


def test_float_save_load_round_trip_is_exact_and_reproducible(be, trained, data, tmp_path):
    model, _ = trained
    a, b = tmp_path / "a.keras", tmp_path / "b.keras"
    artifacts.save_model(be, model, a)
    artifacts.save_model(be, model, b)
    assert a.read_bytes() == b.read_bytes()
    with zipfile.ZipFile(a) as zf:  # no save time or per-process object id inside
        assert {info.date_time for info in zf.infolist()} == {(1980, 1, 1, 0, 0, 0)}
        assert "date_saved" not in json.loads(zf.read("metadata.json"))
        ids = re.findall(r'"shared_object_id": (\d+)', zf.read("config.json").decode())
    assert ids and {int(i) for i in ids} <= set(range(1, 10))
    loaded = be.load(a)
    assert dict(loaded.meta) == dict(model.meta)
    x = data["test"][0]
    assert np.array_equal(be.predict(loaded, x), be.predict(model, x))


def test_float_model_under_any_name_round_trips(be, trained, tmp_path):
    """dvc.yaml names every model `<name>.model`; the content is still a .keras archive."""
    model = trained[0]
    be.save(model, tmp_path / "teacher.model")
    be.save(model, tmp_path / "teacher.keras")
    raw = (tmp_path / "teacher.model").read_bytes()
    assert raw == (tmp_path / "teacher.keras").read_bytes() and raw[:2] == b"PK"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["teacher.keras", "teacher.model"]
    x = np.random.default_rng(0).random((4, *model.meta["input_shape"]), dtype=np.float32)
    assert np.array_equal(be.predict(be.load(tmp_path / "teacher.model"), x), be.predict(model, x))


@pytest.mark.parametrize(
    "name, content",
    [("bad.keras", b"not a zip"), ("bad.tflite", b"\0\0\0\0TFL3garbage"), ("missing.keras", None)],
)
def test_loading_a_bad_file_raises_one_line(be, tmp_path, name, content):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(GreenpipeError, match="re-run the stage") as err:
        be.load(path)
    assert name in str(err.value) and "\n" not in str(err.value)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # Keras 3.15 on NumPy 2 when saving
def test_loading_a_foreign_keras_model_raises(be, tmp_path):
    import keras

    path = tmp_path / "foreign.keras"
    keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)]).save(path)
    with pytest.raises(GreenpipeError, match="not a greenpipe tensorflow model.*re-run"):
        be.load(path)


# --- import isolation -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "code",
    [
        "import greenpipe.backends.tensorflow, sys; assert 'torch' not in sys.modules",
        "import greenpipe, sys; from greenpipe.backends import get_backend; "
        "get_backend('torch'); assert 'tensorflow' not in sys.modules",
    ],
)
def test_each_backend_imports_only_its_framework(code):
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
