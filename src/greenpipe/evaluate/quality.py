"""Accuracy, macro-F1 and the confusion matrix from logits."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import confusion_matrix, f1_score


def quality(logits: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """{"accuracy", "macro_f1"} of argmax predictions (fractions in [0, 1])."""
    if len(y) == 0:
        raise ValueError("cannot evaluate on an empty split")
    pred = logits.argmax(axis=1)
    return {
        "accuracy": float((pred == y).mean()),
        "macro_f1": float(f1_score(y, pred, average="macro", zero_division=0)),
    }


def confusion(logits: np.ndarray, y: np.ndarray, n_classes: int) -> np.ndarray:
    return confusion_matrix(y, logits.argmax(axis=1), labels=list(range(n_classes)))
