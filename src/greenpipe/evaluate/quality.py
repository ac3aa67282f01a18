"""Accuracy, macro-F1 (with bootstrap confidence intervals) and the confusion matrix.

Counted with NumPy's bincount, as scikit-learn's `f1_score(average="macro",
zero_division=0)` and `confusion_matrix` define them (tests/unit/evaluate compares the two):
importing scikit-learn's metrics costs the evaluate stage's process about 2.5 s, ten times
what it evaluates on the default data set.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable

import numpy as np


def quality(logits: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """{"accuracy", "macro_f1"} of argmax predictions (fractions in [0, 1])."""
    if len(y) == 0:
        raise ValueError("cannot evaluate on an empty split")
    y, pred = np.asarray(y, dtype=np.int64), logits.argmax(axis=1).astype(np.int64)
    k = int(max(y.max(), pred.max())) + 1
    return {
        "accuracy": float((pred == y).mean()),
        "macro_f1": float(macro_f1_rows(y[None, :], pred[None, :], k)[0]),
    }


def confusion(logits: np.ndarray, y: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts (n_classes, n_classes): row = actual class, column = predicted class."""
    y, pred = np.asarray(y, dtype=np.int64), logits.argmax(axis=1).astype(np.int64)
    keep = (y < n_classes) & (pred < n_classes)  # as confusion_matrix(labels=range(n))
    codes = y[keep] * n_classes + pred[keep]
    return np.bincount(codes, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def confusion_csv(rows: Iterable[tuple[str, str, str]]) -> str:
    """The data of the `dvc plots` confusion template: a `model,actual,predicted` header and
    one row per (model, test sample), the classes by name (CSV-quoted where a name holds a
    comma, a quote or a line break)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(("model", "actual", "predicted"))
    writer.writerows(rows)
    return buf.getvalue()


def macro_f1_rows(y: np.ndarray, pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Macro-F1 of each row of (R, N) label/prediction arrays, vectorised over the rows.

    As scikit-learn's f1_score(average="macro", zero_division=0): the mean over the classes
    that occur in the row's labels or predictions.
    """
    rows, k = y.shape[0], n_classes
    codes = (np.arange(rows)[:, None] * k * k + y * k + pred).ravel()
    cm = np.bincount(codes, minlength=rows * k * k).reshape(rows, k, k)
    tp = np.diagonal(cm, axis1=1, axis2=2).astype(np.float64)
    fp, fn = cm.sum(axis=1) - tp, cm.sum(axis=2) - tp
    denom = 2 * tp + fp + fn
    present = denom > 0
    f1 = np.divide(2 * tp, denom, out=np.zeros_like(tp), where=present)
    return f1.sum(axis=1) / np.maximum(present.sum(axis=1), 1)


def bootstrap_ci(
    y: np.ndarray, pred: np.ndarray, samples: int, confidence: float, seed: int
) -> dict[str, float]:
    """Percentile bootstrap intervals for accuracy and macro-F1 (fractions in [0, 1]).

    `samples` resamples of the test set with replacement, drawn by a generator seeded with
    `seed` (so the interval is reproducible); the interval holds the central `confidence`
    share of the resampled values.
    """
    y, pred = np.asarray(y, dtype=np.int64), np.asarray(pred, dtype=np.int64)
    if len(y) == 0:
        raise ValueError("cannot bootstrap an empty split")
    idx = np.random.default_rng(seed).integers(0, len(y), size=(samples, len(y)))
    yb, pb = y[idx], pred[idx]
    acc = (yb == pb).mean(axis=1)
    f1 = macro_f1_rows(yb, pb, int(max(y.max(), pred.max())) + 1)
    lo, hi = 100 * (1 - confidence) / 2, 100 * (1 + confidence) / 2
    return {
        "accuracy_ci_low": float(np.percentile(acc, lo)),
        "accuracy_ci_high": float(np.percentile(acc, hi)),
        "macro_f1_ci_low": float(np.percentile(f1, lo)),
        "macro_f1_ci_high": float(np.percentile(f1, hi)),
    }
