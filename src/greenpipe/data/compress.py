"""Dataset compression: float32 in [0, 1] to uint8, stored in a deflate-compressed npz container.

The container is a standard zip of .npy members (readable with `numpy.load`), written with a
configurable zlib level; `decode` turns it back into float32 splits.
"""

from __future__ import annotations

import io
import zipfile

import numpy as np

from greenpipe.config import CompressConfig

Splits = dict[str, tuple[np.ndarray, np.ndarray]]


def quantize(x: np.ndarray, dtype: str) -> np.ndarray:
    """Map [0, 1] floats to uint8 (round(x * 255)), or keep float32."""
    if dtype == "uint8":
        return np.round(np.clip(x, 0.0, 1.0) * 255.0).astype(np.uint8)
    return x.astype(np.float32)


def raw_nbytes(splits: Splits) -> int:
    """Bytes of the arrays as they were before compression."""
    return sum(x.nbytes + y.nbytes for x, y in splits.values())


def encode(splits: Splits, cfg: CompressConfig) -> bytes:
    """The compressed container as bytes."""
    method = zipfile.ZIP_DEFLATED if cfg.codec == "zlib" else zipfile.ZIP_STORED
    level = cfg.level if cfg.codec == "zlib" else None
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=method, compresslevel=level) as zf:
        for name, (x, y) in splits.items():
            for key, arr in ((f"x_{name}", quantize(x, cfg.dtype)), (f"y_{name}", y)):
                member = io.BytesIO()
                np.lib.format.write_array(member, np.ascontiguousarray(arr), allow_pickle=False)
                # a fixed entry time: the same data gives the same bytes (and the same DVC hash)
                info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
                info.compress_type = method
                zf.writestr(info, member.getvalue(), compresslevel=level)
    return buf.getvalue()


def decode(splits: Splits) -> Splits:
    """Turn loaded container splits back into float32 in [0, 1]."""
    out = {}
    for name, (x, y) in splits.items():
        xf = x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x.astype(np.float32)
        out[name] = (xf, y.astype(np.int64))
    return out
