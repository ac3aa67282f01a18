"""greenpipe.data.augment: seeded copies of the train split, originals first."""

from __future__ import annotations

import numpy as np
import pytest

from greenpipe.config import AugmentConfig, TransformSpec
from greenpipe.data.augment import augment


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    x = rng.random((5, 6, 6, 1), dtype=np.float32)
    y = np.array([3, 1, 4, 1, 5], dtype=np.int64)
    return x, y


def test_output_has_factor_times_n_originals_first(data):
    x, y = data
    xa, ya = augment(x, y, AugmentConfig(factor=3), seed=1)
    assert xa.shape == (15, 6, 6, 1) and xa.dtype == np.float32
    np.testing.assert_array_equal(xa[:5], x)
    assert ya.tolist() == y.tolist() * 3
    assert xa.min() >= 0.0 and xa.max() <= 1.0


def test_copies_are_transformed(data):
    x, y = data
    xa, _ = augment(x, y, AugmentConfig(factor=2), seed=1)
    for i in range(5):
        assert not np.array_equal(xa[5 + i], x[i])


def test_no_transform_gives_exact_copies(data):
    x, y = data
    cfg = AugmentConfig(factor=2, transforms=())
    xa, _ = augment(x, y, cfg, seed=1)
    np.testing.assert_array_equal(xa[5:], x)


def test_same_seed_same_bytes(data):
    x, y = data
    a, ya = augment(x, y, AugmentConfig(factor=3), seed=7)
    b, yb = augment(x, y, AugmentConfig(factor=3), seed=7)
    assert a.tobytes() == b.tobytes() and ya.tobytes() == yb.tobytes()


def test_different_seed_different_copies(data):
    x, y = data
    a, _ = augment(x, y, AugmentConfig(factor=2), seed=7)
    b, _ = augment(x, y, AugmentConfig(factor=2), seed=8)
    np.testing.assert_array_equal(a[:5], b[:5])
    assert a.tobytes() != b.tobytes()


def test_factor_one_returns_the_input(data):
    x, y = data
    xa, ya = augment(x, y, AugmentConfig(factor=1), seed=1)
    np.testing.assert_array_equal(xa, x)
    np.testing.assert_array_equal(ya, y)


def test_values_stay_in_range_with_heavy_noise(data):
    x, y = data
    specs = [("rotate", 45), ("shift", 0.5), ("noise", 0.5)]
    cfg = AugmentConfig(factor=4, transforms=[TransformSpec(name=n, limit=v) for n, v in specs])
    xa, _ = augment(x, y, cfg, seed=2)
    assert xa.min() >= 0.0 and xa.max() <= 1.0
    assert xa.min() == 0.0 and xa.max() == 1.0  # the clip was exercised


@pytest.mark.parametrize(
    "name, limit",
    [
        ("flip", 0),
        ("rotate", 30),
        ("shift", 0.2),
        ("zoom", 0.2),
        ("noise", 0.05),
        ("brightness", 0.3),
        ("blur", 5),
    ],
)
def test_every_transform_is_deterministic_and_changes_the_image(data, name, limit):
    x, y = data
    cfg = AugmentConfig(factor=2, transforms=[TransformSpec(name=name, limit=limit)])
    a, _ = augment(x, y, cfg, seed=3)
    b, _ = augment(x, y, cfg, seed=3)
    assert a.tobytes() == b.tobytes()
    assert a.dtype == np.float32 and a.min() >= 0.0 and a.max() <= 1.0
    assert any(not np.array_equal(a[5 + i], x[i]) for i in range(5))


def test_probability_zero_leaves_copies_unchanged(data):
    x, y = data
    cfg = AugmentConfig(factor=2, transforms=[TransformSpec(name="rotate", p=0.0, limit=30)])
    a, _ = augment(x, y, cfg, seed=3)
    np.testing.assert_array_equal(a[5:], x)


def test_same_seed_same_bytes_in_a_fresh_process(data, tmp_path):
    """Seeding does not depend on process state: a new interpreter gives the same bytes."""
    import subprocess
    import sys

    x, y = data
    np.savez(tmp_path / "in.npz", x=x, y=y)
    code = (
        "import sys, numpy as np; from greenpipe.config import AugmentConfig;"
        "from greenpipe.data.augment import augment;"
        "z = np.load(sys.argv[1]); a, _ = augment(z['x'], z['y'], AugmentConfig(factor=3), 7);"
        "sys.stdout.write(a.tobytes().hex())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "in.npz")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    a, _ = augment(x, y, AugmentConfig(factor=3), seed=7)
    assert out == a.tobytes().hex()
