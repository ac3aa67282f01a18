"""greenpipe.optimize.prune: structured L1 pruning on NumPy weights, and through both backends
for every built-in architecture (a pruned model must compute exactly what the original did
when only dead units go)."""

from __future__ import annotations

import numpy as np
import pytest

from greenpipe.architectures import graph, zoo
from greenpipe.backends import get_backend
from greenpipe.backends.base import NotApplicable
from greenpipe.config import (
    DistillConfig,
    MlpArch,
    MobileNetV2Arch,
    ModelArch,
    ModelSpec,
    PruneConfig,
    ResNetArch,
)
from greenpipe.optimize.prune import (
    MIN_HIDDEN,
    fine_tune_config,
    keep_indices,
    narrowed,
    prunable,
    prune_graph,
    prune_model,
)

SHAPE, CLASSES = (8, 8, 1), 3
ARCH = ModelSpec(cnn=ModelArch(channels=(4, 6), hidden=8, dropout=0.0))
SPECS = {
    "cnn": ARCH,
    "mlp": ModelSpec(arch="mlp", mlp=MlpArch(hidden=(12, 8), dropout=0.0)),
    "resnet": ModelSpec(arch="resnet", resnet=ResNetArch(depth=8, width=4)),
    "mobilenetv2": ModelSpec(
        arch="mobilenetv2", mobilenetv2=MobileNetV2Arch(width=0.25, last_channels=16)
    ),
}
CNN_GRAPH = zoo.graph_of(ARCH, SHAPE, CLASSES)


def prune_weights(w, channel_fraction, hidden_fraction):
    return prune_graph(CNN_GRAPH, w, channel_fraction, hidden_fraction)[1]


def test_keep_indices_keeps_the_largest_in_order():
    assert keep_indices(np.array([3.0, 1.0, 5.0, 2.0]), 0.5).tolist() == [0, 2]
    assert keep_indices(np.array([1.0, 1.0, 1.0, 1.0]), 0.25).tolist() == [0, 1, 2]  # ties: low
    assert keep_indices(np.array([1.0, 2.0]), 0.0).tolist() == [0, 1]
    assert keep_indices(np.array([1.0, 2.0, 3.0]), 0.99).tolist() == [2]  # at least one
    assert keep_indices(np.arange(6.0), 0.9, minimum=4).tolist() == [2, 3, 4, 5]
    assert keep_indices(np.arange(3.0), 0.9, minimum=4).tolist() == [0, 1, 2]


def _weights(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """A hand-shaped CNN: conv 1->4, conv 4->6, hidden 8 over a 6x2x2 map, 3 classes."""
    return {
        "conv0.w": rng.normal(size=(4, 1, 3, 3)),
        "conv0.b": rng.normal(size=4),
        "conv1.w": rng.normal(size=(6, 4, 3, 3)),
        "conv1.b": rng.normal(size=6),
        "hidden.w": rng.normal(size=(8, 6, 2, 2)),
        "hidden.b": rng.normal(size=8),
        "logits.w": rng.normal(size=(3, 8)),
        "logits.b": rng.normal(size=3),
    }


def test_prune_weights_removes_the_weakest_units_and_their_inputs():
    w = _weights(np.random.default_rng(0))
    w["conv0.w"][1] *= 0.01  # weakest filter of conv0
    w["conv1.w"][[0, 4]] *= 0.01  # two weakest filters of conv1
    w["hidden.w"][[2, 3, 5, 7]] *= 0.01  # four weakest hidden units
    p = prune_weights(w, channel_fraction=0.25, hidden_fraction=0.5)
    kept0, kept1, kept_h = [0, 2, 3], [1, 2, 3, 5], [0, 1, 4, 6]
    np.testing.assert_array_equal(p["conv0.w"], w["conv0.w"][kept0])
    np.testing.assert_array_equal(p["conv0.b"], w["conv0.b"][kept0])
    np.testing.assert_array_equal(p["conv1.w"], w["conv1.w"][kept1][:, kept0])
    np.testing.assert_array_equal(p["hidden.w"], w["hidden.w"][kept_h][:, kept1])
    np.testing.assert_array_equal(p["hidden.b"], w["hidden.b"][kept_h])
    np.testing.assert_array_equal(p["logits.w"], w["logits.w"][:, kept_h])
    np.testing.assert_array_equal(p["logits.b"], w["logits.b"])
    small = prune_graph(CNN_GRAPH, w, 0.25, 0.5)[0]
    assert [n.filters for n in small if n.op in ("conv", "dense")] == [3, 4, 4, CLASSES]
    before, after = graph.to_json(CNN_GRAPH), graph.to_json(small)
    assert narrowed(before, after) == {"conv0": [4, 3], "conv1": [6, 4], "hidden": [8, 4]}


def test_what_can_be_pruned_in_each_architecture():
    """Layers whose channels feed a residual addition, and the logits, are never pruned."""
    names = {
        arch: [n.name for n, _, _ in prunable(zoo.graph_of(spec, SHAPE, CLASSES))]
        for arch, spec in SPECS.items()
    }
    assert names["cnn"] == ["conv0", "conv1", "hidden"]
    assert names["mlp"] == ["dense0", "dense1"]
    assert names["resnet"] == ["s0b0_1_conv", "s1b0_1_conv", "s2b0_1_conv"]
    mnv2 = names["mobilenetv2"]
    assert "head_conv" in mnv2 and "b1_0_expand_conv" in mnv2 and "logits" not in mnv2
    assert not any(n.endswith("_proj_conv") or n == "stem_conv" for n in names["resnet"])


def test_zero_fractions_change_nothing_and_input_is_not_modified():
    w = _weights(np.random.default_rng(1))
    before = {k: v.copy() for k, v in w.items()}
    p = prune_weights(w, 0.0, 0.0)
    for k in w:
        np.testing.assert_array_equal(p[k], before[k])
        np.testing.assert_array_equal(w[k], before[k])


def test_hidden_never_goes_below_the_model_minimum():
    p = prune_weights(_weights(np.random.default_rng(2)), 0.9, 0.9)
    assert [len(p["conv0.b"]), len(p["conv1.b"]), len(p["hidden.b"])] == [1, 1, 4]
    assert p["hidden.w"].shape == (4, 1, 2, 2)


def test_fine_tune_config_takes_distill_loss_and_prune_budget():
    d = DistillConfig(loss="logit_std", temperature=2.0, alpha=0.5, batch_size=16, epochs=60)
    ft = fine_tune_config(d, PruneConfig(fine_tune_epochs=7, fine_tune_lr=0.01))
    assert (ft.epochs, ft.lr, ft.loss, ft.temperature, ft.batch_size) == (
        7,
        0.01,
        "logit_std",
        2,
        16,
    )


@pytest.fixture(params=["torch", "tensorflow"])
def be(request):
    if request.param == "tensorflow":
        pytest.importorskip("tensorflow")
    return get_backend(request.param)


@pytest.mark.parametrize("arch", sorted(SPECS))
def test_weights_round_trip_through_the_neutral_layout(be, arch):
    be.seed_everything(0)
    a = be.build(SPECS[arch], SHAPE, CLASSES)
    be.seed_everything(1)
    b = be.build(SPECS[arch], SHAPE, CLASSES)
    x = np.random.default_rng(0).random((5, *SHAPE), dtype=np.float32)
    assert not np.allclose(be.predict(a, x), be.predict(b, x), rtol=1e-3, atol=0)
    be.set_weights(b, be.get_weights(a))
    np.testing.assert_allclose(be.predict(a, x), be.predict(b, x), rtol=1e-4, atol=1e-7)
    if arch == "cnn":
        assert be.get_weights(a)["hidden.w"].shape == (8, 6, 2, 2)


def _kill_weakest(be, model, fractions: dict[str, float]) -> None:
    """Make the units pruning will remove contribute nothing: their kernel (so they rank
    last) and their readers' inputs from them are zeroed."""
    w = be.get_weights(model)
    from greenpipe.architectures.graph import from_json

    for node, _, readers in prunable(from_json(model.meta["graph"])):
        n = len(w[f"{node.name}.w"])
        minimum = min(MIN_HIDDEN, n) if node.op == "dense" else 1
        dead = n - len(keep_indices(np.ones(n), fractions[node.op], minimum))
        w[f"{node.name}.w"][:dead] = 0.0
        for r in readers:
            w[f"{r.name}.w"][:, :dead] = 0.0
    be.set_weights(model, w)


@pytest.mark.parametrize("arch", sorted(SPECS))
def test_pruning_dead_units_keeps_the_function_and_shrinks_the_model(be, arch):
    """Units whose outputs nobody reads contribute nothing; pruning exactly those must leave
    the logits unchanged (checks every index, batch-norm slice and the flatten order)."""
    be.seed_everything(0)
    model = be.build(SPECS[arch], SHAPE, CLASSES)
    cfg = PruneConfig(channel_fraction=0.25, hidden_fraction=0.5)
    _kill_weakest(be, model, {"conv": 0.25, "dense": 0.5})
    pruned = prune_model(be, model, cfg)
    assert be.count_params(pruned) < be.count_params(model)
    assert pruned.meta["arch"] == arch and pruned.meta["graph"] != model.meta["graph"]
    x = np.random.default_rng(1).random((7, *SHAPE), dtype=np.float32)
    ref = be.predict(model, x)
    scale = np.abs(ref).max()
    np.testing.assert_allclose(be.predict(pruned, x) / scale, ref / scale, atol=1e-4)


def test_a_custom_model_is_not_pruned_and_says_why(be):
    model = be.build(ARCH, SHAPE, CLASSES)
    model.meta = {**model.meta, "custom": {"file": "custom/models.py", "function": "build"}}
    del model.meta["graph"]
    with pytest.raises(NotApplicable, match="custom/models.py:build"):
        prune_model(be, model, PruneConfig())


def test_int8_models_have_no_neutral_weights(be):
    from greenpipe.config import OptimizeConfig
    from greenpipe.errors import GreenpipeError

    be.seed_everything(0)
    model = be.build(ARCH, SHAPE, CLASSES)
    x = np.random.default_rng(0).random((16, *SHAPE), dtype=np.float32)
    q = be.quantize(model, x, OptimizeConfig(quantization="dynamic"))
    with pytest.raises(GreenpipeError, match="float built-in model"):
        be.get_weights(q)
