"""PNG grids of images with a caption each (flagged samples, augmentation examples).

Rendered with matplotlib's Agg backend and no metadata, so the same images give the same bytes.
"""

from __future__ import annotations

import io

import numpy as np


def image_grid(images: np.ndarray, captions: list[str], cols: int = 8, title: str = "") -> bytes:
    """PNG bytes of (N, H, W, C) images in [0, 1] in a grid of `cols` columns, each captioned."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = max(len(images), 1)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.3, rows * 1.5 + 0.4), squeeze=False)
    for i, ax in enumerate(axes.ravel()):
        ax.axis("off")
        if i < len(images):
            img = np.clip(images[i], 0.0, 1.0)
            ax.imshow(img[..., 0] if img.shape[-1] == 1 else img, cmap="gray", vmin=0, vmax=1)
            ax.set_title(captions[i], fontsize=6)
    if not len(images):
        axes[0, 0].text(0.5, 0.5, "nothing flagged", ha="center", va="center")
    fig.suptitle(title, fontsize=9)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80, metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()
