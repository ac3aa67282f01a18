"""greenpipe.backends.base.EarlyStopping: the early-stopping rule both training loops use,
on a stand-in model (its "weights" a number) and made-up val losses."""

from __future__ import annotations

import pytest

from greenpipe.backends.base import EarlyStopping, History


class Model:
    """A model whose weights are one number, with a record of each copy taken."""

    def __init__(self) -> None:
        self.w, self.copies = 0.0, []

    def snapshot(self) -> float:
        self.copies.append(self.w)
        return self.w

    def load(self, w: float) -> None:
        self.w = w


def run(losses: list[float], patience: int, **kw) -> tuple[EarlyStopping, Model, History, int]:
    """Train for `losses` as a loop does (the weights after epoch e are e); epochs run."""
    model, hist = Model(), History()
    stop = EarlyStopping(patience, model.snapshot, model.load, **kw)
    ran = 0
    for epoch, loss in enumerate(losses, 1):
        model.w, ran = float(epoch), epoch
        if stop.update(loss):
            break
    stop.restore(hist)
    return stop, model, hist, ran


def test_stops_after_patience_epochs_without_improvement_and_restores_the_best():
    stop, model, hist, ran = run([3.0, 2.0, 2.5, 2.1, 1.0], patience=2)
    assert ran == 4  # epochs 3 and 4 did not improve on epoch 2; epoch 5 never ran
    assert (hist.best_epoch, hist.stopped_early) == (2, True)
    assert model.w == 2.0 and stop.best_loss == 2.0
    assert model.copies == [1.0, 2.0]  # a copy only when an epoch improved


def test_an_improvement_resets_the_wait():
    _, model, hist, ran = run([3.0, 3.5, 2.0, 2.5, 2.4, 2.3], patience=2)
    assert ran == 5 and (hist.best_epoch, hist.stopped_early, model.w) == (3, True, 3.0)


def test_runs_out_of_epochs_without_stopping_and_keeps_the_best():
    _, model, hist, ran = run([3.0, 2.0, 2.5], patience=2)
    assert ran == 3 and (hist.best_epoch, hist.stopped_early, model.w) == (2, False, 2.0)


@pytest.mark.parametrize(
    ("min_delta", "best"), [(1e-6, 1), (1e-9, 2)], ids=["within-delta", "beyond-delta"]
)
def test_an_improvement_must_beat_min_delta(min_delta, best):
    _, model, hist, _ = run([1.0, 1.0 - 1e-7, 5.0], patience=1, min_delta=min_delta)
    assert hist.best_epoch == best and model.w == float(best) and hist.stopped_early


def test_the_default_min_delta_ignores_a_gain_of_a_millionth():
    _, _, hist, _ = run([1.0, 1.0 - 1e-7, 1.0 - 2e-6], patience=2)
    assert hist.best_epoch == 3  # epoch 2 was within 1e-6 of epoch 1; epoch 3 beat it


def test_no_epoch_leaves_the_model_and_history_alone():
    model, hist = Model(), History()
    model.w = 7.0
    EarlyStopping(3, model.snapshot, model.load).restore(hist)
    assert model.w == 7.0 and model.copies == [] and hist == History()
