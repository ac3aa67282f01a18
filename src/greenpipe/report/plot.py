"""The accuracy-against-energy picture (PNG bytes)."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

PANELS = (
    ("obtain_kwh", "energy to obtain the model (kWh)"),
    ("energy_per_1k_kwh", "energy per 1,000 inferences (kWh)"),
)


def accuracy_energy_png(rows: list[dict]) -> bytes:
    """Two panels: accuracy vs energy to obtain, and accuracy vs inference energy."""
    fig, axes = plt.subplots(1, len(PANELS), figsize=(11, 4.2))
    for ax, (key, label) in zip(axes, PANELS, strict=True):
        for r in rows:
            if r.get(key) is None or r.get("accuracy") is None:
                continue
            ax.scatter(r[key], r["accuracy"], s=50)
            ax.annotate(
                f"{r['model']} ({r.get('backend', '')})",
                (r[key], r["accuracy"]),
                textcoords="offset points",
                xytext=(5, 4),
                fontsize=8,
            )
        ax.set_xlabel(label)
        ax.set_ylabel("test accuracy")
        ax.grid(alpha=0.3)
    fig.suptitle("Accuracy against energy (CodeCarbon; see the report for how it was measured)")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()
