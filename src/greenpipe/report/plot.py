"""The report's pictures (PNG bytes): accuracy against energy, energy per stage, and the
cross-run Pareto front, seeds and compression plots. Energy axes carry SI prefixes."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from matplotlib.ticker import FuncFormatter, NullFormatter  # noqa: E402

from greenpipe.report.compression import TARGET_RATIO  # noqa: E402
from greenpipe.report.pareto import pareto_front  # noqa: E402
from greenpipe.report.tables import LINEAGE  # noqa: E402
from greenpipe.report.units import si  # noqa: E402

PANELS = (
    ("obtain_j", None, "energy to obtain the model (gross)"),
    ("energy_per_1k_j", "energy_per_1k_std_j", "energy per 1,000 inferences (gross, ± std)"),
)
MARKERS = {"torch": "o", "tensorflow": "s"}
MODEL_ORDER = tuple(LINEAGE)  # teacher, students, then the models derived from them
COMPONENTS = (("cpu_j", "CPU", "#4c72b0"), ("gpu_j", "GPU", "#dd8452"), ("ram_j", "RAM", "#55a868"))


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()


def _tick(value: float) -> str:
    """An axis label with an SI prefix, no trailing zeros: "50 J", "1.2 kJ", "0 J"."""
    number, _, unit = si(value, "J").rpartition(" ")
    if "." in number and "e" not in number:
        number = number.rstrip("0").rstrip(".")
    return f"{number} {unit}"


def _joules(axis) -> None:
    """Tick labels with SI prefixes instead of 1e-08 notation."""
    axis.set_major_formatter(FuncFormatter(lambda v, _: _tick(v)))
    axis.set_minor_formatter(NullFormatter())


def _colours(rows: list[dict]) -> dict[str, tuple]:
    """One colour per model, in lineage order (teacher first), unknown models after."""
    names = sorted({r["model"] for r in rows}, key=lambda m: (_rank(m), m))
    return {m: plt.cm.tab10(i % 10) for i, m in enumerate(names)}


def _rank(model: str) -> int:
    return MODEL_ORDER.index(model) if model in MODEL_ORDER else len(MODEL_ORDER)


def _panel(ax, rows: list[dict], key: str, std: str | None, colours: dict) -> None:
    """Accuracy (with its CI) against `key` (with its std) per model; the Pareto front."""
    usable = [r for r in rows if r.get(key) is not None and r.get("accuracy") is not None]
    for r in usable:
        colour, x, y = colours[r["model"]], r[key], r["accuracy"]
        lo, hi = r.get("accuracy_ci_low"), r.get("accuracy_ci_high")
        if lo is not None and hi is not None:  # the interval as it is, not as +- around y
            ax.vlines(x, lo, hi, color=colour, alpha=0.45, lw=1)
        if std and r.get(std) is not None:
            ax.hlines(y, x - r[std], x + r[std], color=colour, alpha=0.45, lw=1)
        marker = MARKERS.get(r.get("backend"), "^")
        ax.scatter(x, y, s=55, marker=marker, color=colour, edgecolors="black", zorder=3)
    on = pareto_front([(r["accuracy"], r[key]) for r in usable])
    front = sorted((r for r, f in zip(usable, on, strict=True) if f), key=lambda r: r[key])
    if front:
        xs, ys = [r[key] for r in front], [r["accuracy"] for r in front]
        ax.step(xs, ys, where="post", color="0.35", ls="--", lw=1, zorder=1)
    values = [r[key] for r in usable if r[key] > 0]
    if values and max(values) / min(values) > 30:  # a log axis only where the span needs it
        ax.set_xscale("log")
    _joules(ax.xaxis)
    ax.grid(alpha=0.3, which="both")


def accuracy_energy_png(rows: list[dict]) -> bytes:
    """Two panels: accuracy against energy to obtain, and against inference energy. Colour
    by model, marker by backend (one legend, no point labels to overlap), bars = accuracy
    CI and energy std, dashed = the non-dominated (Pareto) points of each panel."""
    colours = _colours(rows)
    fig, axes = plt.subplots(1, len(PANELS), figsize=(12, 4.6), layout="constrained")
    for ax, (key, std, label) in zip(axes, PANELS, strict=True):
        _panel(ax, rows, key, std, colours)
        ax.set_xlabel(label)
        ax.set_ylabel("test accuracy")
    handles = [Line2D([], [], ls="", marker="o", color=c, label=m) for m, c in colours.items()]
    handles += [
        Line2D([], [], ls="", marker=mk, color="0.5", mec="black", label=b)
        for b, mk in MARKERS.items()
        if any(r.get("backend") == b for r in rows)
    ]
    handles.append(Line2D([], [], color="0.35", ls="--", lw=1, label="Pareto front"))
    fig.legend(handles=handles, loc="outside right center", fontsize=8, frameon=False)
    fig.suptitle("Accuracy against energy (CodeCarbon; see the notes for how it was measured)")
    return _png(fig)


def _stage_bar(ax, y: int, stage: dict) -> None:
    """One stage: its components stacked (grey if unknown), active inside, the figures after."""
    parts = [stage.get(k) for k, _, _ in COMPONENTS]
    if None in parts:
        ax.barh(y, stage["energy_j"], color="0.75", height=0.7)
    else:
        lefts = [sum(parts[:i]) for i in range(len(parts))]
        for part, left, (_, _, colour) in zip(parts, lefts, COMPONENTS, strict=True):
            ax.barh(y, part, left=left, color=colour, height=0.7)
    active = stage.get("active_energy_j")
    label = si(stage["energy_j"], "J")
    if active is not None:
        ax.barh(y, active, color="black", height=0.18)
        label += f" (active {si(active, 'J')})"
    ax.annotate(
        label,
        (stage["energy_j"], y),
        xytext=(4, 0),
        textcoords="offset points",
        va="center",
        fontsize=8,
    )


def energy_stages_png(stages: list[dict]) -> bytes:
    """Gross energy per stage as bars stacked by component (CPU, GPU, RAM), the active part
    (above the idle baseline) as a thin black bar inside; each bar labelled at its end."""
    rows = [s for s in stages if s.get("energy_j") is not None][::-1]  # first stage on top
    fig, ax = plt.subplots(figsize=(11, 1.4 + 0.42 * max(len(rows), 1)), layout="constrained")
    for y, stage in enumerate(rows):
        _stage_bar(ax, y, stage)
    ax.set_yticks(range(len(rows)), [s["stage"] for s in rows])
    ax.margins(x=0.18)
    _joules(ax.xaxis)
    handles = [Patch(color=c, label=n) for _, n, c in COMPONENTS]
    handles.append(Patch(color="black", label="active (above idle)"))
    fig.legend(handles=handles, fontsize=8, loc="outside lower center", ncols=4, frameon=False)
    ax.set_xlabel("energy per stage (gross)")
    ax.grid(alpha=0.3, axis="x")
    ax.set_title("Energy per stage by component (CodeCarbon)")
    return _png(fig)


def _backend_keys(ax) -> None:
    """A legend key per backend: its marker, in grey."""
    for b, marker in MARKERS.items():
        ax.scatter([], [], marker=marker, color="0.5", label=b)


def _finish(fig, ax, xlabel: str, ylabel: str, title: str) -> bytes:
    """The cross-run plots' one axis: its labels, a light grid, the legend and the title;
    the figure as PNG bytes."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="best")
    ax.set_title(title)
    fig.tight_layout()
    return _png(fig)


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
    _backend_keys(ax)
    ax.scatter([], [], color="0.75", label="dominated")
    if usable:
        ax.set_xscale("log")
        _joules(ax.xaxis)
    title = "Pareto front: accuracy against energy (all runs)"
    return _finish(fig, ax, xlabel, "test accuracy", title)


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
    _backend_keys(ax)
    if usable:
        ax.set_xscale("log")
    ax.axvline(TARGET_RATIO, color="0.6", ls="--", lw=1)
    return _finish(
        fig,
        ax,
        "data set compression ratio (raw bytes / stored bytes)",
        "teacher test accuracy",
        "Dataset compression: downstream accuracy (marker area: teacher training J)",
    )
