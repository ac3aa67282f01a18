"""Label issues by confident learning (Northcutt et al., JAIR 2021) with cleanlab.

Out-of-fold predicted probabilities come from a cheap model (a logistic regression on the
pixels, k-fold, seeded); cleanlab's `find_label_issues` then marks samples whose given label
disagrees with the per-class confident thresholds (`prune_by_noise_rate`).
"""

from __future__ import annotations

import warnings

import numpy as np


def out_of_fold_probs(x: np.ndarray, y: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """(N, K) probabilities, each row predicted by a model that never saw that sample."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    model = LogisticRegression(max_iter=500, C=1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence warnings on easy, separable data
        return cross_val_predict(model, x.reshape(len(x), -1), y, cv=cv, method="predict_proba")


def label_issues(x: np.ndarray, y: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """True for samples whose label is probably wrong. Classes with fewer than 2 samples make
    the check impossible: then nothing is marked."""
    classes, idx, counts = np.unique(y, return_inverse=True, return_counts=True)
    k = min(folds, int(counts.min())) if len(classes) else 0
    if len(classes) < 2 or k < 2:
        return np.zeros(len(y), dtype=bool)
    from cleanlab.filter import find_label_issues

    probs = out_of_fold_probs(x, idx, k, seed)
    return np.asarray(find_label_issues(idx, probs, filter_by="prune_by_noise_rate"), dtype=bool)
