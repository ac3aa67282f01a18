"""The accuracy-against-energy picture (PNG bytes)."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from greenpipe.report.compression import TARGET_RATIO  # noqa: E402

PANELS = (
    ("obtain_j", "energy to obtain the model (J)"),
    ("energy_per_1k_j", "energy per 1,000 inferences (J)"),
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


MARKERS = {"torch": "o", "tensorflow": "s"}


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()


def pareto_png(points: list[dict], xlabel: str) -> bytes:
    """Accuracy against `energy_j` (log scale) for every point: non-dominated points
    (`pareto` true) coloured by model and joined by the front's staircase, the others grey;
    marker by backend."""
    fig, ax = plt.subplots(figsize=(9, 5.5))
    models = sorted({p["model"] for p in points if p.get("pareto")})
    colours = {m: plt.cm.tab10(i % 10) for i, m in enumerate(models)}
    usable = [p for p in points if p.get("energy_j") and p.get("accuracy") is not None]
    for p in usable:
        on = bool(p.get("pareto"))
        ax.scatter(
            p["energy_j"],
            p["accuracy"],
            marker=MARKERS.get(p.get("backend"), "^"),
            s=60 if on else 25,
            color=colours[p["model"]] if on else "0.75",
            edgecolors="black" if on else "none",
            zorder=3 if on else 2,
        )
    front = sorted((p for p in usable if p.get("pareto")), key=lambda p: p["energy_j"])
    if front:
        ax.step(
            [p["energy_j"] for p in front],
            [p["accuracy"] for p in front],
            where="post",
            color="black",
            lw=1,
            zorder=1,
        )
    for m in models:
        ax.scatter([], [], color=colours[m], edgecolors="black", label=m)
    for b, marker in MARKERS.items():
        ax.scatter([], [], marker=marker, color="0.5", label=b)
    ax.scatter([], [], color="0.75", label="dominated")
    if usable:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("test accuracy")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title("Pareto front: accuracy against energy (all runs)")
    fig.tight_layout()
    return _png(fig)


def seeds_png(rows: list[dict], seeds: list[int]) -> bytes:
    """Test accuracy at each seed, one line per model, one panel per backend."""
    backends = sorted({r["backend"] for r in rows}) or [""]
    fig, axes = plt.subplots(1, len(backends), figsize=(5.5 * len(backends), 4), squeeze=False)
    for ax, backend in zip(axes[0], backends, strict=True):
        for r in (r for r in rows if r["backend"] == backend):
            xs = [str(s) for s in seeds if f"seed_{s}" in r]
            ax.plot(xs, [r[f"seed_{s}"] for s in seeds if f"seed_{s}" in r], "o-", label=r["model"])
        ax.set_title(backend)
        ax.set_xlabel("seed")
        ax.set_ylabel("test accuracy")
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=7)
    fig.suptitle("Accuracy over seeds (same configuration)")
    fig.tight_layout()
    return _png(fig)


def compression_png(rows: list[dict]) -> bytes:
    """Teacher test accuracy against the data set's compression ratio (log scale), marker
    by backend, point area by the teacher's training energy; each point labelled."""
    fig, ax = plt.subplots(figsize=(9, 5))
    usable = [r for r in rows if r.get("ratio") and r.get("accuracy") is not None]
    energies = [r["train_j"] for r in usable if r.get("train_j")]
    top = max(energies) if energies else 1.0
    for r in usable:
        area = 30 + 270 * (r["train_j"] / top) if r.get("train_j") else 30
        ax.scatter(
            r["ratio"],
            r["accuracy"],
            s=area,
            marker=MARKERS.get(r.get("backend"), "^"),
            alpha=0.7,
            edgecolors="black",
        )
        ax.annotate(
            r["setting"], (r["ratio"], r["accuracy"]), xytext=(5, 4), textcoords="offset points"
        )
    for b, marker in MARKERS.items():
        ax.scatter([], [], marker=marker, color="0.5", label=b)
    if usable:
        ax.set_xscale("log")
    ax.axvline(TARGET_RATIO, color="0.6", ls="--", lw=1)
    ax.set_xlabel("data set compression ratio (raw bytes / stored bytes)")
    ax.set_ylabel("teacher test accuracy")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="lower left")
    ax.set_title("Dataset compression: downstream accuracy (marker area: teacher training J)")
    fig.tight_layout()
    return _png(fig)
