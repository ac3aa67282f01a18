"""A CSV of image paths and labels through every stage (`dvc repro`, PyTorch only): images
of mixed sizes and modes (L, RGB, RGBA, P) under inputs/ beside the CSV, class names with a
space and a comma; the names reach data/classes.json, the DVC confusion plot and the report,
and the images the CSV lists are DVC dependencies of prepare."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
from PIL import Image

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("csv_data")]  # one module workspace

CSV = "inputs/shapes/labels.csv"
CLASSES = ("big square", "cross, thin", "ring")
PER_CLASS = 20
MODES = ("L", "RGB", "RGBA", "P")


def _shape(kind: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """A white square, cross or ring on a dark noisy background, uint8 size x size."""
    yy, xx = np.mgrid[:size, :size] / (size - 1) - 0.5
    r = np.hypot(yy, xx)
    masks = (
        (abs(yy) < 0.3) & (abs(xx) < 0.3),
        (abs(yy) < 0.08) | (abs(xx) < 0.08),
        (r > 0.25) & (r < 0.4),
    )
    img = np.where(masks[kind], 220, 30) + rng.normal(0, 12, (size, size))
    return np.clip(img, 0, 255).astype(np.uint8)


def _write_dataset(root) -> None:
    """PER_CLASS images per class in turn L, RGB, RGBA and P, of sizes 14..33 px (some
    wider than tall), and a CSV with an extra column listing them by relative path."""
    rng = np.random.default_rng(7)
    folder = root / "inputs" / "shapes" / "img"
    folder.mkdir(parents=True)
    rows = []
    for kind, label in enumerate(CLASSES):
        for i in range(PER_CLASS):
            size = 14 + (i * 7) % 20
            im = Image.fromarray(_shape(kind, size, rng), mode="L")
            mode = MODES[i % len(MODES)]
            im = im.convert("RGB").quantize() if mode == "P" else im.convert(mode)
            if i % 3 == 0:
                im = im.resize((size + 6, size))  # another aspect ratio
            name = f"{kind}_{i:02d}.png"
            im.save(folder / name)
            rows.append((f"img/{name}", label, "tool-x"))
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows([("path", "label", "annotator"), *rows])
    (root / CSV).write_text(buf.getvalue())


@pytest.fixture(scope="module")
def csv_ws(own_workspace):
    ws = own_workspace
    _write_dataset(ws.path)
    raw = ws.params()
    raw["data"].update(source="csv", path=CSV, image_size=16, channels=1, fit="pad")
    raw["train"]["backends"] = ["torch"]
    ws.write_params(raw)
    ws.run("git", "add", "-A")
    ws.run("git", "commit", "-qm", "csv data set")
    ws.run("dvc", "repro")
    return ws


def test_the_csv_data_set_went_through_every_stage(csv_ws):
    prep = json.loads((csv_ws.path / "metrics/prepare.json").read_text())
    assert prep["classes"] == 3 and sum(prep["samples"].values()) == 3 * PER_CLASS
    assert prep["image"] == {"height": 16, "width": 16, "channels": 1}
    assert json.loads((csv_ws.path / "data/classes.json").read_text()) == {"classes": list(CLASSES)}
    status = csv_ws.run("dvc", "status", "--quiet", check=False)
    assert status.returncode == 0, status.stdout  # every stage up to date in dvc.lock


def test_the_confusion_plot_and_the_report_show_class_names(csv_ws):
    text = (csv_ws.path / "plots/torch/confusion.csv").read_text()
    rows = list(csv.DictReader(io.StringIO(text)))
    evaluated = json.loads((csv_ws.path / "metrics/models/torch/evaluate.json").read_text())
    made = [m for m in evaluated["models"].values() if "skipped" not in m]
    assert len(rows) == len(made) * evaluated["test_samples"]
    assert {r["actual"] for r in rows} == set(CLASSES)
    assert {r["predicted"] for r in rows} <= set(CLASSES)
    assert evaluated["classes"] == list(CLASSES)
    # DVC reads the plot with the names (its confusion template, as dvc.yaml declares it)
    shown = csv_ws.run("dvc", "plots", "show", "--json", "plots/torch/confusion.csv")
    assert '"cross, thin"' in shown.stdout and '"big square"' in shown.stdout
    report = (csv_ws.path / "reports/report.md").read_text()
    assert "## Per class (test split)" in report
    for name in CLASSES:
        assert f"| {name} | torch | 4 |" in report, report[-3000:]
    html = (csv_ws.path / "reports/report.html").read_text()
    assert "cross, thin" in html


def test_the_listed_images_are_dvc_dependencies(csv_ws):
    img = csv_ws.path / "inputs/shapes/img/1_03.png"
    before = img.read_bytes()
    try:
        Image.new("L", (20, 20), 0).save(img)
        status = csv_ws.run("dvc", "status", "prepare", check=False)
        assert "changed deps" in status.stdout and "inputs" in status.stdout, status.stdout
    finally:
        img.write_bytes(before)
    assert csv_ws.run("dvc", "status", "--quiet", check=False).returncode == 0
