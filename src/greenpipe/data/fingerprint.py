"""Image fingerprints for duplicate search: content hashes (exact) and a perceptual hash (near).

The perceptual hash is pHash (Zauner 2010, as in the `imagehash` package): grayscale, resized
to 32 x 32, 2-D DCT, the 8 x 8 lowest frequencies compared with their median -> 64 bits.
Images that look alike (re-encoded, slightly brighter, a little noise) differ in few bits.
"""

from __future__ import annotations

import hashlib

import numpy as np
from scipy import fft, ndimage

_SIDE, _LOW = 32, 8


def content_hashes(x: np.ndarray) -> list[str]:
    """SHA-1 of each sample's bytes (equal only for byte-identical samples)."""
    return [hashlib.sha1(np.ascontiguousarray(s).tobytes()).hexdigest() for s in x]


def _gray32(x: np.ndarray) -> np.ndarray:
    g = x.astype(np.float64).mean(axis=3)
    h, w = g.shape[1:]
    if min(h, w) > _SIDE:  # average first so shrinking does not alias
        g = ndimage.uniform_filter(g, size=(1, h // _SIDE, w // _SIDE), mode="nearest")
    return ndimage.zoom(g, (1, _SIDE / h, _SIDE / w), order=1, mode="nearest", grid_mode=True)


def phash(x: np.ndarray) -> np.ndarray:
    """64-bit perceptual hashes, one uint64 per image of (N, H, W, C) in [0, 1]."""
    if len(x) == 0:
        return np.zeros(0, dtype=np.uint64)
    low = fft.dctn(_gray32(x), type=2, axes=(1, 2), norm="ortho")[:, :_LOW, :_LOW]
    flat = low.reshape(len(x), -1)
    bits = flat > np.median(flat[:, 1:], axis=1, keepdims=True)  # DC term left out
    return np.packbits(bits, axis=1).view(">u8").ravel().astype(np.uint64)


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise Hamming distances (bits) between uint64 hash vectors: shape (len(a), len(b))."""
    return np.bitwise_count(a[:, None] ^ b[None, :])


def near_duplicates_within(h: np.ndarray, max_bits: int) -> np.ndarray:
    """True for each hash within `max_bits` of an earlier hash that is itself kept (the first
    of a group of look-alikes is kept, the later ones are marked)."""
    dup = np.zeros(len(h), dtype=bool)
    for i in range(1, len(h)):
        earlier = h[:i][~dup[:i]]
        dup[i] = bool((np.bitwise_count(earlier ^ h[i]) <= max_bits).any())
    return dup


def near_any(h: np.ndarray, ref: np.ndarray, max_bits: int, chunk: int = 2048) -> np.ndarray:
    """True for each hash in `h` within `max_bits` of some hash in `ref`."""
    out = np.zeros(len(h), dtype=bool)
    if len(ref) == 0:
        return out
    for s in range(0, len(h), chunk):
        out[s : s + chunk] = (hamming(h[s : s + chunk], ref) <= max_bits).any(axis=1)
    return out
