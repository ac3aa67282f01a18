"""Growth: pipeline time and energy at 1x, 4x and 16x the training data.

The data set grows through the augmentation factor; each size runs prepare -> clean ->
augment -> compress -> train@torch (`dvc repro train@torch`, fixed epochs, no early stop) in a
fresh copy of the repo. Prints, per size, the train samples, the wall time, CodeCarbon's energy
(estimated or measured, as it says), and the time per sample-epoch of training and of the
whole run, so that anything worse than linear shows.
Target: time per sample at 16x within 1.3x of that at 4x. JSON result rows on the last line.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import workspace  # noqa: E402

FACTORS = (1, 4, 16)
EPOCHS = 4
BASE = {
    "train.backends": ["torch"],
    "train.epochs": EPOCHS,
    "train.patience": EPOCHS + 1,
}
STAGES = ("prepare", "clean", "augment", "compress")


def run_size(factor: int) -> dict:
    ws = workspace.make({**BASE, "augment.factor": factor})
    t0 = time.perf_counter()
    workspace.run(ws, "dvc", "repro", "train@torch")
    wall = time.perf_counter() - t0
    metrics = {s: json.loads((ws / "metrics" / f"{s}.json").read_text()) for s in STAGES}
    train = json.loads((ws / "metrics/models/torch/train.json").read_text())
    all_stages = [*metrics.values(), train]
    samples = int(train["train_samples"])
    epochs = int(train["epochs_run"])
    return {
        "factor": factor,
        "samples": samples,
        "wall_s": wall,
        "train_s": train["energy"]["duration_s"],
        "energy_j": sum(m["energy"]["energy_j"] for m in all_stages),
        "train_j": train["energy"]["energy_j"],
        "source": train["energy"]["source"]["cpu"],
        "train_us_per_sample": 1e6 * train["energy"]["duration_s"] / (samples * epochs),
        "wall_us_per_sample": 1e6 * wall / (samples * epochs),
    }


def main() -> None:
    rows = [run_size(f) for f in FACTORS]
    print(
        f"{'size':<6}{'samples':>9}{'wall s':>9}{'train s':>9}{'J (all)':>12}"
        f"{'J train':>12}{'train us/sample':>17}{'wall us/sample':>16}"
    )
    for r in rows:
        print(
            f"{r['factor']:>3}x  {r['samples']:>9}{r['wall_s']:>9.1f}{r['train_s']:>9.1f}"
            f"{r['energy_j']:>12.3e}{r['train_j']:>12.3e}"
            f"{r['train_us_per_sample']:>17.1f}{r['wall_us_per_sample']:>16.1f}"
        )
    print(f"energy: CodeCarbon, CPU {rows[0]['source']}; sample = one sample through one epoch")
    by = {r["factor"]: r for r in rows}
    growth = by[16]["train_us_per_sample"] / by[4]["train_us_per_sample"]
    growth_wall = by[16]["wall_us_per_sample"] / by[4]["wall_us_per_sample"]
    print(f"time per sample 16x / 4x: training {growth:.2f}, whole run {growth_wall:.2f}")
    # the cost of each extra sample between 4x and 16x, and between 1x and 4x: fixed costs
    # cancel out, so a marginal cost that rises with size would show superlinear growth
    marg = [
        1e6 * (b["train_s"] - a["train_s"]) / ((b["samples"] - a["samples"]) * EPOCHS)
        for a, b in ((by[1], by[4]), (by[4], by[16]))
    ]
    print(
        f"marginal training time per sample-epoch: 1x->4x {marg[0]:.1f} us, "
        f"4x->16x {marg[1]:.1f} us"
    )
    out = [
        ("training time per sample, 16x / 4x", growth, "<= 1.3", growth <= 1.3),
        (
            "marginal training time per sample, (4x->16x) / (1x->4x)",
            marg[1] / marg[0],
            "-",  # informational: small differences of noisy times
            None,
        ),
        ("whole-run time per sample, 16x / 4x", growth_wall, "<= 1.3", growth_wall <= 1.3),
    ]
    print(json.dumps({"rows": out}))


if __name__ == "__main__":
    main()
