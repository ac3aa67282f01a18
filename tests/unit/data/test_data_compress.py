"""greenpipe.data.compress: uint8 quantization in a zip of .npy members."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest

from greenpipe.config import CompressConfig
from greenpipe.data.compress import decode, encode, quantize, raw_nbytes
from greenpipe.data.sources import load_digits_images


def _load(blob: bytes) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    with np.load(io.BytesIO(blob), allow_pickle=False) as z:
        names = sorted({k[2:] for k in z.files})
        return {n: (z[f"x_{n}"], z[f"y_{n}"]) for n in names}


@pytest.fixture
def splits():
    rng = np.random.default_rng(0)
    return {
        "train": (rng.random((8, 4, 4, 1), dtype=np.float32), rng.integers(0, 3, 8)),
        "test": (rng.random((3, 4, 4, 1), dtype=np.float32), rng.integers(0, 3, 3)),
    }


def test_quantize_rounds_and_clips():
    x = np.array([0.0, 0.5, 1.0, -0.2, 1.3, 0.1], dtype=np.float32)
    assert quantize(x, "uint8").tolist() == [0, 128, 255, 0, 255, 26]
    assert quantize(x, "uint8").dtype == np.uint8
    assert quantize(x.astype(np.float64), "float32").dtype == np.float32


def test_container_loads_with_numpy(splits):
    blob = encode(splits, CompressConfig())
    with np.load(io.BytesIO(blob), allow_pickle=False) as z:
        assert sorted(z.files) == ["x_test", "x_train", "y_test", "y_train"]
        assert z["x_train"].dtype == np.uint8 and z["x_train"].shape == (8, 4, 4, 1)


def test_uint8_round_trip_within_one_step(splits):
    back = decode(_load(encode(splits, CompressConfig(dtype="uint8"))))
    for name, (x, y) in splits.items():
        bx, by = back[name]
        assert bx.dtype == np.float32 and by.dtype == np.int64
        assert np.abs(bx - x).max() <= 1 / 255
        np.testing.assert_array_equal(by, y)


def test_float32_round_trip_is_exact(splits):
    back = decode(_load(encode(splits, CompressConfig(dtype="float32"))))
    for name, (x, _) in splits.items():
        np.testing.assert_array_equal(back[name][0], x)


def test_codec_sets_the_zip_method(splits):
    for codec, method in (("zlib", zipfile.ZIP_DEFLATED), ("none", zipfile.ZIP_STORED)):
        blob = encode(splits, CompressConfig(codec=codec))
        with zipfile.ZipFile(io.BytesIO(blob)) as zf:
            assert {i.compress_type for i in zf.infolist()} == {method}


def test_digits_compress_and_none_is_larger_than_zlib():
    x, y = load_digits_images()
    splits = {"train": (x[:1200], y[:1200]), "test": (x[1200:], y[1200:])}
    zlib_blob = encode(splits, CompressConfig(codec="zlib"))
    none_blob = encode(splits, CompressConfig(codec="none"))
    assert raw_nbytes(splits) / len(zlib_blob) > 1
    assert len(none_blob) > len(zlib_blob)


def test_raw_nbytes_sums_every_array(splits):
    assert raw_nbytes(splits) == 8 * 16 * 4 + 8 * 8 + 3 * 16 * 4 + 3 * 8


def test_same_data_gives_same_bytes(monkeypatch):
    """DVC hashes the container: a re-run must not change it (no timestamps inside)."""
    import time as _time

    from greenpipe.config import CompressConfig
    from greenpipe.data.compress import encode

    rng = np.random.default_rng(0)
    splits = {"train": (rng.random((6, 8, 8, 1), dtype=np.float32), np.arange(6))}
    first = encode(splits, CompressConfig())
    real = _time.localtime
    monkeypatch.setattr(_time, "localtime", lambda *a: real(_time.time() + 86400 * 400))
    assert encode(splits, CompressConfig()) == first


# --- codecs, downscaling, subsampling ------------------------------------------------------


@pytest.mark.parametrize("codec, level", [("zlib", 9), ("zstd", 19), ("blosc2", 9), ("none", 0)])
def test_every_codec_round_trips_and_is_byte_deterministic(splits, tmp_path, codec, level):
    from greenpipe.data.compress import load_container

    cfg = CompressConfig(codec=codec, level=level)
    blob = encode(splits, cfg)
    assert blob == encode(splits, cfg)
    (tmp_path / "d.npz").write_bytes(blob)
    back = load_container(tmp_path / "d.npz", tuple(splits))
    for name, (x, y) in splits.items():
        assert np.abs(back[name][0] - x).max() <= 1 / 255
        np.testing.assert_array_equal(back[name][1], y)


def test_downscale_stores_smaller_and_restores_the_shape(tmp_path):
    from greenpipe.data.compress import load_container

    x, y = load_digits_images()
    splits = {"train": (x[:300], y[:300]), "test": (x[300:400], y[300:400])}
    small = encode(splits, CompressConfig(downscale=2))
    assert len(small) < len(encode(splits, CompressConfig()))
    (tmp_path / "d.npz").write_bytes(small)
    back = load_container(tmp_path / "d.npz", ("train", "test"))
    assert back["train"][0].shape == (300, 8, 8, 1)
    assert back["train"][0].min() >= 0.0 and back["train"][0].max() <= 1.0


def test_a_codec_level_out_of_range_is_a_config_error():
    with pytest.raises(ValueError, match="level must be in 1..22"):
        CompressConfig(codec="zstd", level=0)


@pytest.mark.parametrize("method", ["stratified", "kcenter"])
def test_subsample_keeps_class_shares_and_is_seeded(method):
    from greenpipe.data.subsample import subsample

    x, y = load_digits_images()
    keep = subsample(x, y, 0.25, method, seed=1)
    assert abs(len(keep) - round(0.25 * len(y))) <= 10
    assert np.all(np.diff(keep) > 0)
    share = np.bincount(y[keep], minlength=10) / len(keep)
    assert np.abs(share - np.bincount(y) / len(y)).max() < 0.01
    np.testing.assert_array_equal(keep, subsample(x, y, 0.25, method, seed=1))
    assert len(subsample(x, y, 1.0, method, seed=1)) == len(y)


def test_kcenter_covers_the_space_better_than_random():
    from greenpipe.data.subsample import k_center_greedy

    rng = np.random.default_rng(0)
    pts = np.concatenate([rng.normal(0, 0.01, (500, 2)), rng.normal(5, 0.01, (5, 2))])
    chosen = k_center_greedy(pts, 3, rng)
    assert (pts[chosen, 0] > 2).any() and (pts[chosen, 0] < 2).any()
