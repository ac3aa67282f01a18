"""One image file as the array every stage expects, whatever its size, mode or aspect ratio.

The rule (README "Your own data", inputs/README.md): the file is decoded fully (a truncated
file is unreadable, not half an image), its EXIF orientation is applied, 16-bit grayscale is
scaled to 8 bits, transparent pixels (RGBA, LA, palette transparency) are composited onto
black, the result is converted to `data.channels` (1: Pillow's "L" luminance, 3: RGB) and
brought to `data.image_size` x `data.image_size` pixels as `data.fit` says:

- stretch: resized to the square, aspect ratio not kept (a 64x32 image is squeezed);
- pad: resized to fit inside the square with its aspect ratio kept, centred on black;
- crop: resized to cover the square with its aspect ratio kept, the centre cut out.

Resampling is bilinear. A multi-frame file (GIF, TIFF) gives its first frame.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

FITS = ("stretch", "pad", "crop")


def _flatten(im, channels: int):
    """`im` in mode L (channels 1) or RGB (channels 3), transparency composited on black."""
    from PIL import Image

    if im.mode in ("I;16", "I;16B", "I;16L", "I"):  # 16-bit grayscale PNG/TIFF
        arr = np.asarray(im, dtype=np.float64) * (255.0 / 65535.0)
        im = Image.fromarray(np.clip(arr, 0, 255).round().astype(np.uint8), mode="L")
    elif im.mode == "F":
        arr = np.asarray(im, dtype=np.float64)
        im = Image.fromarray((np.clip(arr, 0, 1) * 255).round().astype(np.uint8), mode="L")
    if im.mode == "P" or im.mode in ("LA", "La", "PA", "RGBa") or "transparency" in im.info:
        im = im.convert("RGBA")
    if im.mode == "RGBA":
        black = Image.new("RGBA", im.size, (0, 0, 0, 255))
        im = Image.alpha_composite(black, im)
    return im.convert("L" if channels == 1 else "RGB")


def fit_image(im, size: int, fit: str):
    """`im` brought to size x size pixels by `fit` (stretch, pad or crop)."""
    from PIL import Image, ImageOps

    bilinear = Image.Resampling.BILINEAR
    if fit == "pad":
        return ImageOps.pad(im, (size, size), method=bilinear, color=0, centering=(0.5, 0.5))
    if fit == "crop":
        return ImageOps.fit(im, (size, size), method=bilinear, centering=(0.5, 0.5))
    return im.resize((size, size), bilinear)


def read_image(path: str | Path, size: int, channels: int, fit: str = "stretch"):
    """One image as float32 (size, size, channels) in [0, 1], or None if it cannot be decoded
    (missing, unreadable, truncated or not an image)."""
    from PIL import Image, ImageOps

    try:
        with Image.open(path) as im:
            im.load()  # decodes fully: a truncated file raises here, not later
            im = ImageOps.exif_transpose(im)
            im = fit_image(_flatten(im, channels), size, fit)
            arr = np.asarray(im, dtype=np.float32) / 255.0
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None
    return arr.reshape(size, size, channels)
