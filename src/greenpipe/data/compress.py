"""Dataset compression: quantization, downscaling and a codec, in a byte-deterministic container.

The container is a zip (fixed entry times, so the same data gives the same bytes and the same
DVC hash) holding, per split, `x_<split>` and `y_<split>` as .npy members:

- codec `zlib` / `none`: members `<key>.npy`, deflated or stored: a plain npz that
  `numpy.load` reads;
- codec `zstd` / `blosc2`: stored members `<key>.npy.zst` / `<key>.npy.b2`, each the .npy
  bytes compressed by that codec (`load_container` reads them);
- with `downscale` > 1, a member `full_size.npy` holds the original (height, width): images
  are stored smaller and `decode` resizes them back, so models see the original shape.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
from scipy import ndimage

from greenpipe.config import CompressConfig
from greenpipe.errors import DataError

Splits = dict[str, tuple[np.ndarray, np.ndarray]]
SUFFIX = {"zlib": ".npy", "none": ".npy", "zstd": ".npy.zst", "blosc2": ".npy.b2"}
_EPOCH = (1980, 1, 1, 0, 0, 0)


def quantize(x: np.ndarray, dtype: str) -> np.ndarray:
    """Map [0, 1] floats to uint8 (round(x * 255)), or keep float32."""
    if dtype == "uint8":
        return np.round(np.clip(x, 0.0, 1.0) * 255.0).astype(np.uint8)
    return x.astype(np.float32)


def downscale(x: np.ndarray, factor: int) -> np.ndarray:
    """(N, H, W, C) -> (N, ceil(H/f), ceil(W/f), C) by averaging f x f blocks (edge-padded)."""
    if factor == 1:
        return x
    n, h, w, c = x.shape
    ph, pw = -h % factor, -w % factor
    xp = np.pad(x, ((0, 0), (0, ph), (0, pw), (0, 0)), mode="edge")
    blocks = xp.reshape(n, (h + ph) // factor, factor, (w + pw) // factor, factor, c)
    return blocks.mean(axis=(2, 4), dtype=np.float64).astype(np.float32)


def upscale(x: np.ndarray, height: int, width: int) -> np.ndarray:
    """(N, h, w, C) -> (N, height, width, C) by bilinear interpolation, clipped to [0, 1]."""
    if len(x) == 0:
        return np.zeros((0, height, width, x.shape[3]), np.float32)
    if x.shape[1:3] == (height, width):
        return x
    zoom = (1, height / x.shape[1], width / x.shape[2], 1)
    out = ndimage.zoom(x, zoom, order=1, mode="nearest", grid_mode=True)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def raw_nbytes(splits: Splits) -> int:
    """Bytes of the arrays as they were before compression."""
    return sum(x.nbytes + y.nbytes for x, y in splits.values())


def _npy(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.ascontiguousarray(arr), allow_pickle=False)
    return buf.getvalue()


def _pack(data: bytes, codec: str, level: int, itemsize: int) -> bytes:
    if codec == "zstd":
        import zstandard

        return zstandard.ZstdCompressor(level=level, threads=0).compress(data)
    if codec == "blosc2":
        import blosc2

        return blosc2.compress(
            data,
            typesize=itemsize,
            clevel=level,
            filter=blosc2.Filter.SHUFFLE,
            codec=blosc2.Codec.ZSTD,
        )
    return data


def _unpack(data: bytes, name: str) -> bytes:
    if name.endswith(".zst"):
        import zstandard

        return zstandard.ZstdDecompressor().decompress(data)
    if name.endswith(".b2"):
        import blosc2

        return blosc2.decompress(data)
    return data


def _members(splits: Splits, cfg: CompressConfig) -> list[tuple[str, np.ndarray]]:
    out = []
    for name, (x, y) in splits.items():
        out += [(f"x_{name}", quantize(downscale(x, cfg.downscale), cfg.dtype)), (f"y_{name}", y)]
    if cfg.downscale > 1:
        first = next(iter(splits.values()))[0]
        out.append(("full_size", np.array(first.shape[1:3], dtype=np.int64)))
    return out


def encode(splits: Splits, cfg: CompressConfig) -> bytes:
    """The compressed container as bytes (identical bytes for identical inputs and cfg)."""
    deflate = cfg.codec == "zlib"
    method = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
    level = cfg.level if deflate else None
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=method, compresslevel=level) as zf:
        for key, arr in _members(splits, cfg):
            data = _pack(_npy(arr), cfg.codec, cfg.level, arr.dtype.itemsize)
            # a fixed entry time: the same data gives the same bytes (and the same DVC hash)
            info = zipfile.ZipInfo(key + SUFFIX[cfg.codec], date_time=_EPOCH)
            info.compress_type = method
            zf.writestr(info, data, compresslevel=level)
    return buf.getvalue()


def read_container(path: str | Path) -> dict[str, np.ndarray]:
    """Every array of a container written by `encode` (any codec), by key (`x_train`, ...)."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"data file '{p}' not found; run the stage that makes it (dvc repro)")
    try:
        with zipfile.ZipFile(p) as zf:
            out = {}
            for info in zf.infolist():
                key = info.filename.split(".", 1)[0]
                raw = _unpack(zf.read(info), info.filename)
                out[key] = np.lib.format.read_array(io.BytesIO(raw), allow_pickle=False)
            return out
    except (ValueError, OSError, zipfile.BadZipFile, RuntimeError):
        raise DataError(
            f"'{p}' is not a readable data set; re-run the stage that writes it"
        ) from None


def decode(splits: Splits, full_size: tuple[int, int] | None = None) -> Splits:
    """Turn loaded container splits back into float32 in [0, 1] (at `full_size` if given)."""
    out = {}
    for name, (x, y) in splits.items():
        xf = x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x.astype(np.float32)
        if full_size is not None:
            xf = upscale(xf, *full_size)
        out[name] = (xf, y.astype(np.int64))
    return out


def load_container(path: str | Path, names: tuple[str, ...]) -> Splits:
    """The splits `names` of a container as float32 in [0, 1] at the original resolution."""
    arrays = read_container(path)
    missing = [f"{k}_{s}" for s in names for k in "xy" if f"{k}_{s}" not in arrays]
    if missing:
        raise DataError(f"'{path}' lacks arrays {missing}; re-run the stage that writes it")
    size = arrays.get("full_size")
    full = (int(size[0]), int(size[1])) if size is not None else None
    return decode({s: (arrays[f"x_{s}"], arrays[f"y_{s}"]) for s in names}, full)
