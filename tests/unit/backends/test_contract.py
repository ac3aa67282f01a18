"""The Backend contract (`greenpipe.backends.base`), one suite run on both frameworks:
building, fitting with early stopping, seeded identity, distillation, int8 models, files.

What only one framework does (TFLite's converter, Keras archives, torch's generator) is
tested beside this file, in test_tensorflow.py and test_torch.py.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from greenpipe import artifacts
from greenpipe.architectures.graph import param_count, to_json
from greenpipe.architectures.zoo import graph_of
from greenpipe.backends import available_backends, get_backend
from greenpipe.config import (
    DistillConfig,
    FitConfig,
    MobileNetV2Arch,
    ModelArch,
    ModelSpec,
    OptimizeConfig,
    ResNetArch,
)
from greenpipe.errors import GreenpipeError

SHAPE, CLASSES = (8, 8, 1), 3
ARCH = ModelSpec(cnn=ModelArch(channels=(16, 32), hidden=128, dropout=0.1))  # ~22k params
TINY = ModelSpec(cnn=ModelArch(channels=(8,), hidden=16, dropout=0.2))
OTHER = {"torch": "tensorflow", "tensorflow": "torch"}


def _images(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Noise in [0, 0.3] plus a bright 4x4 quadrant whose position is the class."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, CLASSES, n).astype(np.int64)
    x = rng.uniform(0.0, 0.3, (n, *SHAPE)).astype(np.float32)
    for i, c in enumerate(y):
        r, col = divmod(int(c), 2)
        x[i, 4 * r : 4 * r + 4, 4 * col : 4 * col + 4, 0] += 0.6
    return x, y


@pytest.fixture(scope="module", params=sorted(OTHER))
def be(request):
    if request.param == "tensorflow":
        pytest.importorskip("tensorflow")
    return get_backend(request.param)


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


def _cross_entropy(logits: np.ndarray, y: np.ndarray) -> float:
    z = logits - logits.max(1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(1, keepdims=True))
    return float(-log_p[np.arange(len(y)), y].mean())


# --- build, registry ------------------------------------------------------------------------


def test_registered_and_named(be):
    assert be.name in available_backends() and get_backend(be.name) is be
    suffixes = {"torch": (".safetensors", ".safetensors"), "tensorflow": (".keras", ".tflite")}
    assert (be.file_suffix(False), be.file_suffix(True)) == suffixes[be.name]
    info = be.device()
    assert info["backend"] == be.name and info["device"] in ("cpu", "gpu", "cuda")


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
def test_build_counts_the_graphs_params_and_records_its_meta(be, arch):
    """A built-in architecture has the parameter count of its layer graph in either
    framework (so the same in both), and the same `.meta`."""
    g = graph_of(arch, SHAPE, CLASSES)
    model = be.build(arch, SHAPE, CLASSES)
    assert be.count_params(model) == param_count(g, SHAPE)
    meta = {"arch": arch.arch, "graph": to_json(g), "input_shape": list(SHAPE)}
    assert dict(model.meta) == {**meta, "n_classes": CLASSES, "quantized": None}
    if arch == ModelSpec(arch="resnet"):  # ResNet-20 with projection shortcuts on CIFAR-10
        assert param_count(graph_of(arch, (32, 32, 3), 10), (32, 32, 3)) == 272_474


# --- fit, early stopping, determinism -------------------------------------------------------


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
    ce = _cross_entropy(be.predict(model, noisy["val"][0]), noisy["val"][1])
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


def test_distill_trains_the_student(be, trained, data):
    teacher, _ = trained
    be.seed_everything(0)
    student = be.build(TINY, SHAPE, CLASSES)
    cfg = DistillConfig(epochs=10, batch_size=32, lr=0.005, patience=3, model=TINY)
    hist = be.distill(student, teacher, data, cfg, desc="test kd")
    assert 1 <= hist.best_epoch <= len(hist.epochs)
    assert hist.epochs[-1]["val_loss"] < hist.epochs[0]["val_loss"]
    assert _acc(be.predict(student, data["test"][0]), data["test"][1]) > 0.8


# --- int8, files ----------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["static", "dynamic"])
def test_quantize_is_small_accurate_and_round_trips(be, trained, data, tmp_path, mode):
    model, _ = trained
    x, y = data["test"]
    float_size = artifacts.save_model(be, model, tmp_path / f"m{be.file_suffix(False)}")
    qm = be.quantize(model, data["train"][0], OptimizeConfig(quantization=mode))
    q_path = tmp_path / f"q{be.file_suffix(True)}"
    q_size = artifacts.save_model(be, qm, q_path)
    # torch's int8 is an ONNX QDQ graph (per-channel scales and zero points beside the int8
    # weights): about 2.2x smaller here, TFLite 3x or more; dynamic int8 quantizes each
    # batch's inputs to that batch's range
    torch_dynamic = (be.name, mode) == ("torch", "dynamic")
    assert q_size <= float_size / (2 if be.name == "torch" else 3)
    assert qm.meta.items() >= {**model.meta, "quantized": mode}.items()
    # evaluate records where each model ran: int8 always on the CPU, float on the backend's
    assert be.device_of(qm) == "cpu" and be.device_of(model) == be.device()["device"]
    q_logits = be.predict(qm, x)
    assert q_logits.dtype == np.float32 and q_logits.shape == (len(x), CLASSES)
    assert _acc(q_logits, y) >= _acc(be.predict(model, x), y) - 0.05
    # batch size 1 (latency) and then a larger batch give the same logits
    one = np.concatenate([be.predict(qm, x[i : i + 1], batch_size=1) for i in range(5)])
    np.testing.assert_allclose(one, be.predict(qm, x[:5]), atol=0.05 if torch_dynamic else 1e-5)
    loaded = be.load(q_path)
    assert loaded.meta == qm.meta and be.count_params(loaded) == be.count_params(qm)
    assert np.array_equal(be.predict(loaded, x), q_logits)
    q_path.write_bytes(q_path.read_bytes()[: q_size // 2])
    with pytest.raises(GreenpipeError, match="re-run the stage") as err:
        be.load(q_path)
    assert "\n" not in str(err.value)


def test_float_save_load_round_trip_is_exact(be, trained, data, tmp_path):
    model, _ = trained
    a, b = tmp_path / f"a{be.file_suffix(False)}", tmp_path / f"b{be.file_suffix(False)}"
    artifacts.save_model(be, model, a)
    artifacts.save_model(be, model, b)
    assert a.read_bytes() == b.read_bytes()
    loaded = be.load(a)
    assert dict(loaded.meta) == dict(model.meta)
    x = data["test"][0]
    assert np.array_equal(be.predict(loaded, x), be.predict(model, x))


SAVE = textwrap.dedent(
    """
    import sys
    from greenpipe.backends import get_backend
    from greenpipe.config import ModelArch, ModelSpec
    be = get_backend(sys.argv[1])
    be.seed_everything(3)
    model = be.build(ModelSpec(cnn=ModelArch(channels=(4, 8), hidden=16)), (8, 8, 1), 3)
    be.save(model, sys.argv[2])
    """
)


def test_same_model_same_bytes_across_processes(be, tmp_path):
    """Model files are a function of the model alone: the same weights give the same bytes
    in every process (DVC hashes them, and `greenpipe verify` compares them)."""
    script = tmp_path / "save.py"
    script.write_text(SAVE)
    for name, seed in (("a.model", "1"), ("b.model", "2")):
        subprocess.run(
            [sys.executable, str(script), be.name, str(tmp_path / name)],
            check=True,
            env={"PYTHONHASHSEED": seed, "PATH": ""},
            capture_output=True,
            timeout=120,
        )
    assert (tmp_path / "a.model").read_bytes() == (tmp_path / "b.model").read_bytes()
    assert be.load(tmp_path / "a.model").meta["n_classes"] == 3


def test_float_model_under_any_name_round_trips(be, trained, tmp_path):
    """dvc.yaml names every model `<name>.model`; the content is the framework's own file."""
    model = trained[0]
    be.save(model, tmp_path / "teacher.model")
    be.save(model, tmp_path / f"teacher{be.file_suffix(False)}")
    raw = (tmp_path / "teacher.model").read_bytes()
    assert raw == (tmp_path / f"teacher{be.file_suffix(False)}").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["teacher.model", f"teacher{be.file_suffix(False)}"]
    )
    x = np.random.default_rng(0).random((4, *model.meta["input_shape"]), dtype=np.float32)
    assert np.array_equal(be.predict(be.load(tmp_path / "teacher.model"), x), be.predict(model, x))


@pytest.mark.parametrize("content", [b"not a model file", None], ids=["garbage", "missing"])
def test_loading_a_bad_file_raises_one_line(be, tmp_path, content):
    path = tmp_path / f"bad{be.file_suffix(False)}"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(GreenpipeError, match="re-run the stage") as err:
        be.load(path)
    assert path.name in str(err.value) and "\n" not in str(err.value)


def _foreign_model(framework: str, path) -> None:
    """A model file of `framework` that greenpipe did not write."""
    if framework == "torch":
        import safetensors.torch
        import torch

        safetensors.torch.save_file({"w": torch.zeros(2)}, path)
    else:
        import keras

        keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)]).save(path)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # Keras 3.15 on NumPy 2 when saving
def test_loading_a_foreign_model_raises(be, tmp_path):
    path = tmp_path / f"foreign{be.file_suffix(False)}"
    _foreign_model(be.name, path)
    with pytest.raises(GreenpipeError, match=f"not a greenpipe {be.name} model.*re-run"):
        be.load(path)


# --- import isolation -----------------------------------------------------------------------


def test_each_backend_imports_only_its_framework(be):
    code = (
        "import greenpipe, sys; from greenpipe.backends import get_backend; "
        f"get_backend({be.name!r}); assert {OTHER[be.name]!r} not in sys.modules"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
