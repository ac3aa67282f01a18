"""greenpipe.data.sources: digits, npz files and the stratified split."""

from __future__ import annotations

import numpy as np
import pytest

from greenpipe.data.sources import load_digits_images, load_npz_images, stratified_split
from greenpipe.errors import DataError


def test_load_digits_images_shape_and_range():
    x, y = load_digits_images()
    assert x.shape == (1797, 8, 8, 1) and x.dtype == np.float32
    assert x.min() == 0.0 and x.max() == 1.0
    assert y.shape == (1797,) and y.dtype == np.int64
    assert set(np.unique(y)) == set(range(10))


# --- stratified_split ----------------------------------------------------------------------


def _labelled(counts: dict[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """x holds each sample's index (so samples can be traced), y its class."""
    y = np.concatenate([np.full(n, c) for c, n in counts.items()]).astype(np.int64)
    x = np.arange(len(y), dtype=np.float32).reshape(-1, 1, 1, 1)
    return x, y


def test_split_sizes_add_up_and_are_disjoint():
    x, y = _labelled({0: 40, 1: 60, 2: 100})
    s = stratified_split(x, y, val_fraction=0.15, test_fraction=0.2, seed=3)
    assert (len(s["train"][0]), len(s["val"][0]), len(s["test"][0])) == (130, 30, 40)
    ids = [set(s[k][0].ravel().astype(int)) for k in ("train", "val", "test")]
    assert ids[0].isdisjoint(ids[1]) and ids[0].isdisjoint(ids[2]) and ids[1].isdisjoint(ids[2])
    assert set.union(*ids) == set(range(200))


def test_split_keeps_labels_with_their_samples():
    x, y = _labelled({0: 10, 1: 20})
    s = stratified_split(x, y, 0.15, 0.2, seed=0)
    for xs, ys in s.values():
        np.testing.assert_array_equal(y[xs.ravel().astype(int)], ys)


def test_split_keeps_class_proportions():
    counts = {0: 40, 1: 60, 2: 100}
    x, y = _labelled(counts)
    s = stratified_split(x, y, 0.15, 0.2, seed=1)
    for _, ys in s.values():
        n = len(ys)
        for c, total in counts.items():
            assert abs((ys == c).sum() - n * total / 200) <= 1


def test_split_is_deterministic_by_seed():
    x, y = _labelled({0: 30, 1: 30, 2: 30})
    a = stratified_split(x, y, 0.15, 0.2, seed=5)
    b = stratified_split(x, y, 0.15, 0.2, seed=5)
    c = stratified_split(x, y, 0.15, 0.2, seed=6)
    for k in ("train", "val", "test"):
        np.testing.assert_array_equal(a[k][0], b[k][0])
        np.testing.assert_array_equal(a[k][1], b[k][1])
    assert not np.array_equal(a["train"][0], c["train"][0])


def test_split_needs_two_classes():
    x, y = _labelled({4: 20})
    with pytest.raises(DataError, match="1 class"):
        stratified_split(x, y, 0.15, 0.2, seed=0)


def test_split_needs_three_samples_per_class():
    x, y = _labelled({0: 20, 7: 2})
    with pytest.raises(DataError, match="class 7 has 2 sample"):
        stratified_split(x, y, 0.15, 0.2, seed=0)


# --- load_npz_images -----------------------------------------------------------------------


def _npz(tmp_path, **arrays):
    path = tmp_path / "in.npz"
    np.savez(path, **arrays)
    return path


def test_npz_uint8_is_scaled_and_gets_a_channel_axis(tmp_path):
    x = np.array([[[0, 255], [51, 102]]] * 3, dtype=np.uint8)
    path = _npz(tmp_path, x=x, y=np.array([0, 1, 2], dtype=np.int32))
    xi, yi, names = load_npz_images(path)
    assert names == ["0", "1", "2"]  # no classes array: the labels' decimal form
    assert xi.shape == (3, 2, 2, 1) and xi.dtype == np.float32
    np.testing.assert_allclose(xi[0, :, :, 0], [[0.0, 1.0], [0.2, 0.4]], rtol=1e-6)
    assert yi.dtype == np.int64 and yi.tolist() == [0, 1, 2]


def test_npz_float_is_kept_as_is(tmp_path):
    x = np.full((2, 3, 3, 2), 0.5, dtype=np.float64)
    xi, _, _ = load_npz_images(_npz(tmp_path, x=x, y=np.array([1, 0])))
    assert xi.shape == (2, 3, 3, 2) and xi.dtype == np.float32
    assert np.all(xi == 0.5)


def test_npz_missing_file(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_npz_images(tmp_path / "absent.npz")


def test_npz_missing_keys(tmp_path):
    path = _npz(tmp_path, images=np.zeros((2, 2, 2)), y=np.zeros(2))
    with pytest.raises(DataError, match="named x and y"):
        load_npz_images(path)


def test_npz_mismatched_lengths(tmp_path):
    path = _npz(tmp_path, x=np.zeros((3, 2, 2)), y=np.zeros(2))
    with pytest.raises(DataError, match=r"N == len\(y\)"):
        load_npz_images(path)


def test_npz_flat_x_is_rejected(tmp_path):
    path = _npz(tmp_path, x=np.zeros((3, 4)), y=np.zeros(3))
    with pytest.raises(DataError):
        load_npz_images(path)


def test_npz_that_is_not_an_npz_is_a_data_error(tmp_path):
    path = tmp_path / "digits.csv"
    path.write_text("x,y\n0.1,3\n")
    with pytest.raises(DataError):
        load_npz_images(path)


def test_check_source_refuses_a_missing_or_wrong_data_path_before_any_stage(tmp_path):
    from greenpipe.data.sources import check_source

    check_source("digits", None, tmp_path)  # the embedded default needs no path
    with pytest.raises(DataError, match="data.path 'inputs/none.npz' does not exist"):
        check_source("npz", "inputs/none.npz", tmp_path)
    (tmp_path / "inputs").mkdir()
    np.savez(tmp_path / "inputs/ok.npz", x=np.zeros((3, 2, 2)), y=np.zeros(3))
    check_source("npz", "inputs/ok.npz", tmp_path)  # relative to the repo root
    check_source("npz", str(tmp_path / "inputs/ok.npz"), tmp_path / "elsewhere")
    with pytest.raises(DataError, match="data.path 'inputs/ok.npz' is not a folder"):
        check_source("image_folder", "inputs/ok.npz", tmp_path)
    (tmp_path / "inputs/imgs/cat").mkdir(parents=True)
    with pytest.raises(DataError, match="1 class folder"):
        check_source("image_folder", "inputs/imgs", tmp_path)
    (tmp_path / "inputs/imgs/dog").mkdir()
    check_source("image_folder", "inputs/imgs", tmp_path)


def test_upscale_enlarges_digits_and_keeps_their_range():
    import numpy as np

    from greenpipe.config import DataConfig
    from greenpipe.data.sources import load_source, upscaled

    small, big = load_source(DataConfig()), load_source(DataConfig(upscale=4))
    assert small.x.shape[1:] == (8, 8, 1) and big.x.shape[1:] == (32, 32, 1)
    np.testing.assert_array_equal(small.y, big.y)
    assert big.x.min() >= 0.0 and big.x.max() <= 1.0
    # each 4x4 block averages back to its source pixel, blurred by the interpolation
    blocks = big.x.reshape(len(big.x), 8, 4, 8, 4, 1).mean(axis=(2, 4))
    assert np.corrcoef(blocks.ravel(), small.x.ravel())[0, 1] > 0.95
    assert upscaled(small.x, 1) is small.x


def test_upscale_is_refused_for_sources_that_resize_themselves():
    import pytest
    from pydantic import ValidationError

    from greenpipe.config import Params

    with pytest.raises(ValidationError, match="data.image_size"):
        Params.model_validate({"data": {"source": "csv", "path": "inputs/x.csv", "upscale": 2}})


def test_checking_data_path_does_not_import_scikit_learn():
    """`greenpipe run` checks data.path through this module before any flow starts, a cached
    run too: scikit-learn (about 1.7 s to import) is loaded only when a split is made."""
    import subprocess
    import sys

    code = (
        "import sys; from greenpipe.data.sources import check_source; "
        "print('sklearn' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
