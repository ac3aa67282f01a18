"""Reading the report's PNGs back in tests: their size, and the marks drawn in one colour."""

from __future__ import annotations

import io

import numpy as np


def size(png: bytes) -> tuple[int, int]:
    """(height, width) in pixels of a decoded PNG."""
    import matplotlib.image as mpimg

    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    return mpimg.imread(io.BytesIO(png), format="png").shape[:2]


def pixels(png: bytes) -> np.ndarray:
    """The picture as an (height, width, 3) array of 0-255 ints."""
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)


def blobs(
    png: bytes | np.ndarray, colour, alpha: float = 1.0, bridge: int = 0, min_px: int = 12
) -> list[int]:
    """The areas (px, sorted) of the solid marks drawn in exactly `colour` (a matplotlib
    colour, blended with `alpha` over the white background): markers, bars, legend keys.
    Lines up to 3 px wide are removed (opening), so a line plot's markers count one each
    and its lines not at all; `bridge` > 0 first joins the pieces of a mark that grid lines
    drawn over it cut apart (closing with a `bridge` px square)."""
    from matplotlib.colors import to_rgb
    from scipy import ndimage

    want = np.round((alpha * np.array(to_rgb(colour)) + (1 - alpha)) * 255)
    px = png if isinstance(png, np.ndarray) else pixels(png)  # a picture or a part of one
    mask = np.abs(px - want).max(axis=2) <= 2
    if bridge:
        mask = ndimage.binary_closing(mask, np.ones((bridge, bridge)))
    mask = ndimage.binary_opening(mask, np.ones((4, 4)))
    labels, n = ndimage.label(mask)
    areas = ndimage.sum(mask, labels, range(1, n + 1))
    return sorted(int(a) for a in areas if a >= min_px)
