"""greenpipe.data.augment: seeded copies of the train split, originals first."""

from __future__ import annotations

import numpy as np
import pytest

from greenpipe.config import AugmentConfig
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
    cfg = AugmentConfig(factor=2, max_shift_px=0, max_rotation_deg=0, noise_std=0)
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
    cfg = AugmentConfig(factor=4, noise_std=0.5, max_rotation_deg=45, max_shift_px=4)
    xa, _ = augment(x, y, cfg, seed=2)
    assert xa.min() >= 0.0 and xa.max() <= 1.0
    assert xa.min() == 0.0 and xa.max() == 1.0  # the clip was exercised
