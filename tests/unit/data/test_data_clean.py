"""greenpipe.data.clean: invalid samples, duplicates and leakage, each removed and counted."""

from __future__ import annotations

import numpy as np
import pytest

from greenpipe.config import CleanConfig
from greenpipe.data.clean import REASONS, clean_splits, invalid_mask

SHAPE = (2, 2, 1)
ZERO = dict.fromkeys(REASONS, 0)
# the exact checks on 2x2 images (a perceptual hash needs real pictures: see test_data_audit)
BASE = CleanConfig(drop_near_duplicates=False, label_issues="off")


def _distinct(n: int, offset: int) -> np.ndarray:
    """n distinct valid images in [0, 1]; `offset` keeps splits apart from each other."""
    base = (np.arange(n * 4, dtype=np.float32) + offset * 4) / 100.0
    return base.reshape(n, *SHAPE)


@pytest.fixture
def splits():
    return {
        "train": (_distinct(6, 0), np.arange(6, dtype=np.int64)),
        "val": (_distinct(3, 10), np.array([0, 1, 2], dtype=np.int64)),
        "test": (_distinct(3, 20), np.array([3, 4, 5], dtype=np.int64)),
    }


def _with(splits, name, x=None, y=None):
    out = dict(splits)
    ox, oy = splits[name]
    out[name] = (ox if x is None else x, oy if y is None else y)
    return out


def test_clean_data_is_unchanged(splits):
    out, counts = clean_splits(splits, BASE, SHAPE)
    assert counts == {"train": ZERO, "val": ZERO, "test": ZERO}
    for name, (x, y) in splits.items():
        np.testing.assert_array_equal(out[name][0], x)
        np.testing.assert_array_equal(out[name][1], y)


def test_non_finite_samples_are_invalid(splits):
    xt = splits["train"][0].copy()
    xt[1, 0, 0, 0] = np.nan
    xt[4, 1, 1, 0] = np.inf
    xv = splits["val"][0].copy()
    xv[2, 0, 1, 0] = -np.inf
    s = _with(_with(splits, "train", xt), "val", xv)
    out, counts = clean_splits(s, BASE, SHAPE)
    assert counts["train"] == {**ZERO, "invalid": 2}
    assert counts["val"] == {**ZERO, "invalid": 1}
    assert counts["test"] == ZERO
    assert out["train"][1].tolist() == [0, 2, 3, 5]
    assert out["val"][1].tolist() == [0, 1]
    assert np.isfinite(out["train"][0]).all()


def test_out_of_range_samples_are_invalid(splits):
    xs = splits["test"][0].copy()
    xs[0, 0, 0, 0] = 1.5
    xs[2, 1, 0, 0] = -0.01
    out, counts = clean_splits(_with(splits, "test", xs), BASE, SHAPE)
    assert counts["test"] == {**ZERO, "invalid": 2}
    assert out["test"][1].tolist() == [4]


def test_values_at_the_bounds_are_valid():
    x = np.array([[[[0.0], [1.0]], [[0.0], [1.0]]]], dtype=np.float32)
    assert not invalid_mask(x, np.array([0]), SHAPE).any()


def test_negative_label_is_invalid(splits):
    y = splits["train"][1].copy()
    y[3] = -1
    out, counts = clean_splits(_with(splits, "train", y=y), BASE, SHAPE)
    assert counts["train"]["invalid"] == 1
    assert -1 not in out["train"][1]


def test_a_wrong_shape_split_is_removed_whole(splits):
    bad = np.zeros((3, 3, 3, 1), dtype=np.float32) + np.arange(3).reshape(3, 1, 1, 1) / 10
    out, counts = clean_splits(_with(splits, "val", bad), BASE, SHAPE)
    assert counts["val"] == {**ZERO, "invalid": 3}
    assert len(out["val"][0]) == 0 and len(out["val"][1]) == 0
    assert counts["train"] == ZERO and len(out["train"][0]) == 6


def test_exact_duplicates_within_a_split_keep_the_first_copy(splits):
    x, y = splits["train"]
    xd = np.concatenate([x, x[[2, 2, 4]]])
    yd = np.concatenate([y, [20, 21, 22]])
    out, counts = clean_splits(_with(splits, "train", xd, yd), BASE, SHAPE)
    assert counts["train"] == {**ZERO, "duplicate": 3}
    assert out["train"][1].tolist() == [0, 1, 2, 3, 4, 5]
    np.testing.assert_array_equal(out["train"][0], x)


def test_near_duplicates_are_kept(splits):
    x, y = splits["train"]
    near = x[[0]].copy()
    near[0, 0, 0, 0] += 1e-6
    s = _with(splits, "train", np.concatenate([x, near]), np.concatenate([y, [9]]))
    _, counts = clean_splits(s, BASE, SHAPE)
    assert counts["train"] == ZERO


def test_duplicates_in_val_are_counted_under_val(splits):
    x, y = splits["val"]
    s = _with(splits, "val", np.concatenate([x, x[[0]]]), np.concatenate([y, [0]]))
    out, counts = clean_splits(s, BASE, SHAPE)
    assert counts["val"] == {**ZERO, "duplicate": 1}
    assert counts["train"] == ZERO and len(out["val"][0]) == 3


def test_leakage_is_removed_from_train_never_from_val_or_test(splits):
    x, y = splits["train"]
    xv, xs = splits["val"][0], splits["test"][0]
    leaked = np.concatenate([x, xv[[1]], xs[[0, 2]]])
    s = _with(splits, "train", leaked, np.concatenate([y, [7, 8, 9]]))
    out, counts = clean_splits(s, BASE, SHAPE)
    assert counts["train"] == {**ZERO, "leakage": 3}
    assert counts["val"] == ZERO and counts["test"] == ZERO
    np.testing.assert_array_equal(out["train"][0], x)
    assert out["train"][1].tolist() == y.tolist()
    for name in ("val", "test"):
        np.testing.assert_array_equal(out[name][0], splits[name][0])
        np.testing.assert_array_equal(out[name][1], splits[name][1])


def test_invalid_is_counted_before_duplicate(splits):
    x, y = splits["train"]
    nan = np.full((2, *SHAPE), np.nan, dtype=np.float32)
    s = _with(splits, "train", np.concatenate([x, nan]), np.concatenate([y, [8, 9]]))
    _, counts = clean_splits(s, BASE, SHAPE)
    assert counts["train"] == {**ZERO, "invalid": 2}


def test_duplicate_is_counted_before_leakage(splits):
    x, y = splits["train"]
    xv = splits["val"][0]
    s = _with(splits, "train", np.concatenate([x, xv[[0, 0]]]), np.concatenate([y, [8, 9]]))
    _, counts = clean_splits(s, BASE, SHAPE)
    assert counts["train"] == {**ZERO, "duplicate": 1, "leakage": 1}


@pytest.mark.parametrize("flag", ["drop_invalid", "drop_duplicates", "drop_leakage"])
def test_each_flag_turns_its_check_off(splits, flag):
    x, y = splits["train"]
    bad = x[[0]].copy()
    bad[0, 0, 0, 0] = 2.0
    planted = np.concatenate([x, bad, x[[1]], splits["test"][0][[0]]])
    s = _with(splits, "train", planted, np.concatenate([y, [10, 11, 12]]))
    cfg = BASE.model_copy(update={flag: False})
    out, counts = clean_splits(s, cfg, SHAPE)
    expected = {**ZERO, "invalid": 1, "duplicate": 1, "leakage": 1}
    off = {"drop_invalid": "invalid", "drop_duplicates": "duplicate", "drop_leakage": "leakage"}
    expected[off[flag]] = 0
    assert counts["train"] == expected
    assert len(out["train"][0]) == 6 + 1


def test_all_checks_off_keeps_everything(splits):
    x, y = splits["train"]
    planted = np.concatenate([x, x[[0]], np.full((1, *SHAPE), np.nan, np.float32)])
    s = _with(splits, "train", planted, np.concatenate([y, [0, 1]]))
    cfg = BASE.model_copy(
        update={"drop_invalid": False, "drop_duplicates": False, "drop_leakage": False}
    )
    out, counts = clean_splits(s, cfg, SHAPE)
    assert counts["train"] == ZERO and len(out["train"][0]) == 8


def test_an_empty_split_is_cleaned_to_empty(splits):
    empty = (np.zeros((0, *SHAPE), np.float32), np.zeros(0, np.int64))
    s = {**splits, "val": empty}
    out, counts = clean_splits(s, BASE, SHAPE)
    assert counts["val"] == ZERO and len(out["val"][0]) == 0
