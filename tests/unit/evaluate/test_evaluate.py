"""greenpipe.evaluate: quality from logits; latency, throughput and energy with fakes."""

from __future__ import annotations

import contextlib
from types import SimpleNamespace

import numpy as np
import pytest

from greenpipe.evaluate import speed
from greenpipe.evaluate.quality import confusion, quality
from greenpipe.evaluate.speed import energy_per_1k, latency_ms, throughput


def _logits(pred: list[int], n_classes: int) -> np.ndarray:
    out = np.zeros((len(pred), n_classes), dtype=np.float32)
    out[np.arange(len(pred)), pred] = 3.0
    return out


# --- quality -------------------------------------------------------------------------------


def test_quality_on_hand_made_logits():
    # class 0: F1 1; class 1: P 1/2 R 1 -> 2/3; class 2: P 1 R 1/2 -> 2/3
    q = quality(_logits([0, 1, 2, 1], 3), np.array([0, 1, 2, 2]))
    assert q["accuracy"] == pytest.approx(0.75)
    assert q["macro_f1"] == pytest.approx(7 / 9)


def test_quality_perfect_and_all_wrong():
    y = np.array([0, 1, 1, 0])
    assert quality(_logits([0, 1, 1, 0], 2), y) == {"accuracy": 1.0, "macro_f1": 1.0}
    assert quality(_logits([1, 0, 0, 1], 2), y) == {"accuracy": 0.0, "macro_f1": 0.0}


def test_quality_empty_split_raises():
    with pytest.raises(ValueError, match="empty"):
        quality(np.zeros((0, 3)), np.zeros(0, dtype=np.int64))


def test_confusion_counts_with_unseen_classes():
    m = confusion(_logits([0, 1, 1, 2], 4), np.array([0, 1, 2, 2]), n_classes=4)
    assert m.tolist() == [[1, 0, 0, 0], [0, 1, 0, 0], [0, 1, 1, 0], [0, 0, 0, 0]]


# --- speed ---------------------------------------------------------------------------------


class FakePredict:
    """Records every batch it is given."""

    def __init__(self) -> None:
        self.batches: list[np.ndarray] = []

    def __call__(self, xb: np.ndarray):
        self.batches.append(xb.copy())
        return np.zeros((len(xb), 2))

    @property
    def samples(self) -> int:
        return sum(len(b) for b in self.batches)


@pytest.fixture
def x():
    return np.arange(10, dtype=np.float32).reshape(10, 1, 1, 1)


def test_latency_calls_warmup_plus_runs_at_batch_size_one(x):
    predict = FakePredict()
    lat = latency_ms(predict, x, warmup=3, runs=12)
    assert len(predict.batches) == 15
    assert all(b.shape == (1, 1, 1, 1) for b in predict.batches)
    # samples cycle through x
    assert [int(b.ravel()[0]) for b in predict.batches[3:]] == [*range(10), 0, 1]
    assert set(lat) == {"latency_p50_ms", "latency_p95_ms", "latency_mean_ms"}
    assert 0 <= lat["latency_p50_ms"] <= lat["latency_p95_ms"]


def test_throughput_predicts_n_samples_in_batches_after_a_warmup(x, monkeypatch):
    clock = [0.0]

    class TimedPredict(FakePredict):
        def __call__(self, xb):  # 2 ms a sample on the clock throughput reads
            clock[0] += 0.002 * len(xb)
            return super().__call__(xb)

    monkeypatch.setattr(speed, "time", SimpleNamespace(perf_counter=lambda: clock[0]))
    predict = TimedPredict()
    sps = throughput(predict, x, batch_size=4, n=30)
    assert sps == pytest.approx(500.0)  # the 30 timed samples, not the warm-up batch
    warm, *timed = predict.batches
    assert len(warm) == 4
    assert [len(b) for b in timed] == [4] * 7 + [2]
    ids = np.concatenate([b.ravel() for b in timed]).astype(int)
    assert ids.tolist() == [i % 10 for i in range(30)]


def test_throughput_is_n_over_the_elapsed_time(x, monkeypatch):
    clock = iter([100.0, 102.5])
    monkeypatch.setattr(speed, "time", SimpleNamespace(perf_counter=lambda: next(clock)))
    assert throughput(FakePredict(), x, batch_size=5, n=50) == pytest.approx(20.0)


def _fake_task(reading, names: list[str], inside: list[bool]):
    @contextlib.contextmanager
    def task(name):
        names.append(name)
        box: dict = {}
        inside.append(True)
        try:
            yield box
        finally:
            inside.append(False)
            if reading is not None:
                box["reading"] = reading

    return task


def test_energy_per_1k_divides_the_task_energy_by_the_inferences(x):
    predict, names, inside = FakePredict(), [], []
    reading = SimpleNamespace(energy_j=2e-3, duration_s=1.5)
    out = energy_per_1k(predict, x, 4, 100, _fake_task(reading, names, inside), "teacher", 0.0)
    assert names == ["teacher"] and inside == [True, False]
    assert out["inferences"] >= 100 and out["inferences"] == predict.samples
    assert out["energy_per_1k_j"] == pytest.approx(2e-3 / out["inferences"] * 1000)
    assert out["energy_loop_j"] == 2e-3 and out["energy_loop_s"] == 1.5


def test_energy_per_1k_runs_inside_the_task(x):
    state = {"open": False, "outside_calls": 0}

    @contextlib.contextmanager
    def task(name):
        state["open"] = True
        yield {}
        state["open"] = False

    def predict(xb):
        state["outside_calls"] += not state["open"]

    energy_per_1k(predict, x, 4, 50, task, "m", min_seconds=0.0)
    assert state["outside_calls"] == 0


def test_energy_per_1k_without_a_reading_gives_none(x):
    predict = FakePredict()
    out = energy_per_1k(predict, x, 8, 40, _fake_task(None, [], []), "m", min_seconds=0.0)
    assert out == {"inferences": predict.samples, "energy_per_1k_j": None}
    assert out["inferences"] >= 40


def test_energy_per_1k_keeps_going_until_min_seconds(x, monkeypatch):
    now = [0.0]
    monkeypatch.setattr(speed, "time", SimpleNamespace(perf_counter=lambda: now[0]))

    def predict(xb):
        now[0] += 1.0  # every batch "takes" one second on the fake clock

    reading = SimpleNamespace(energy_j=1e-3, duration_s=9.0)
    out = energy_per_1k(predict, x, 4, 4, _fake_task(reading, [], []), "m", min_seconds=9.0)
    assert out["inferences"] == 9 * 4
    assert out["energy_per_1k_j"] == pytest.approx(1e-3 / 36 * 1000)


# --- bootstrap, batch latency, repeated energy, memory ----------------------------------


def test_macro_f1_rows_matches_scikit_learn():
    from sklearn.metrics import f1_score

    from greenpipe.evaluate.quality import macro_f1_rows

    rng = np.random.default_rng(0)
    y = rng.integers(0, 5, (30, 25))
    pred = np.where(rng.random((30, 25)) < 0.6, y, rng.integers(0, 5, (30, 25)))
    pred[0] = 0  # a row predicting one class only
    want = [f1_score(y[i], pred[i], average="macro", zero_division=0) for i in range(30)]
    np.testing.assert_allclose(macro_f1_rows(y, pred, 7), want, atol=1e-12)


def test_quality_and_confusion_match_scikit_learn():
    """greenpipe counts them with NumPy (scikit-learn's import costs a stage 2.5 s): the same
    figures as f1_score(average="macro", zero_division=0) and confusion_matrix(labels=...)."""
    from sklearn.metrics import confusion_matrix, f1_score

    rng = np.random.default_rng(3)
    for n, k in ((200, 10), (7, 5), (40, 3)):
        y = rng.integers(0, k, n)
        pred = np.where(rng.random(n) < 0.7, y, rng.integers(0, k, n))
        logits = _logits(list(pred), k)
        assert quality(logits, y)["macro_f1"] == pytest.approx(
            f1_score(y, pred, average="macro", zero_division=0), abs=1e-12
        )
        labels = list(range(k + 1))  # one class never seen
        want = confusion_matrix(y, pred, labels=labels)
        np.testing.assert_array_equal(confusion(_logits(list(pred), k + 1), y, k + 1), want)


def test_evaluate_stage_does_not_import_scikit_learn():
    import subprocess
    import sys

    code = "import sys, greenpipe.evaluate.quality; print('sklearn' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_bootstrap_ci_brackets_the_estimate_and_is_seeded():
    from greenpipe.evaluate.quality import bootstrap_ci

    rng = np.random.default_rng(1)
    y = rng.integers(0, 4, 300)
    pred = np.where(rng.random(300) < 0.8, y, (y + 1) % 4)
    ci = bootstrap_ci(y, pred, samples=500, confidence=0.9, seed=7)
    acc = (y == pred).mean()
    assert ci["accuracy_ci_low"] < acc < ci["accuracy_ci_high"]
    assert ci["accuracy_ci_high"] - ci["accuracy_ci_low"] < 0.15
    assert ci["macro_f1_ci_low"] < ci["macro_f1_ci_high"]
    assert bootstrap_ci(y, pred, 500, 0.9, seed=7) == ci
    assert bootstrap_ci(y, pred, 500, 0.9, seed=8) != ci
    perfect = bootstrap_ci(y, y, 200, 0.95, seed=0)
    assert perfect == {k: 1.0 for k in perfect}
    with pytest.raises(ValueError, match="empty"):
        bootstrap_ci(np.zeros(0), np.zeros(0), 100, 0.95, 0)


def test_latency_at_a_larger_batch_has_its_own_keys(x):
    predict = FakePredict()
    lat = latency_ms(predict, x, warmup=1, runs=3, batch_size=4)
    assert [b.shape[0] for b in predict.batches] == [4] * 4
    assert [int(v) for v in predict.batches[1].ravel()] == [0, 1, 2, 3]  # first timed batch
    assert [int(v) for v in predict.batches[3].ravel()] == [8, 9, 0, 1]  # wraps around x
    assert set(lat) == {
        "latency_batch_p50_ms",
        "latency_batch_p95_ms",
        "latency_batch_mean_ms",
        "latency_batch_size",
    }
    assert lat["latency_batch_size"] == 4


def test_energy_rounds_give_mean_and_spread_over_separate_tasks(x):
    from greenpipe.evaluate.speed import energy_rounds

    readings = iter([1e-3, 2e-3, 3e-3])
    names: list[str] = []

    @contextlib.contextmanager
    def task(name):
        names.append(name)
        box: dict = {}
        yield box
        box["reading"] = SimpleNamespace(energy_j=next(readings), duration_s=1.0)

    out = energy_rounds({"m": FakePredict()}, x, 5, 50, task, repeats=3, min_seconds=0)["m"]
    assert names == ["m#0", "m#1", "m#2"]
    per_1k = np.array([1e-3, 2e-3, 3e-3]) / 50 * 1000
    assert out["energy_repeats"] == 3 and out["inferences"] == 150
    assert out["energy_per_1k_j"] == pytest.approx(per_1k.mean())
    assert out["energy_per_1k_std_j"] == pytest.approx(per_1k.std(ddof=1))
    assert (out["energy_per_1k_min_j"], out["energy_per_1k_max_j"]) == pytest.approx(
        (per_1k.min(), per_1k.max())
    )
    assert out["energy_loop_j"] == pytest.approx(6e-3) and out["energy_loop_s"] == 3.0


def test_energy_rounds_without_readings(x):
    from greenpipe.evaluate.speed import energy_rounds

    task = _fake_task(None, [], [])
    out = energy_rounds({"m": FakePredict()}, x, 5, 20, task, repeats=2, min_seconds=0)["m"]
    assert out == {"inferences": 40, "energy_repeats": 0, "energy_per_1k_j": None}


def test_peak_memory_in_a_fresh_process(tmp_path):
    from greenpipe import artifacts
    from greenpipe.backends import get_backend
    from greenpipe.config import ModelArch, ModelSpec
    from greenpipe.evaluate.memory import peak_memory

    be = get_backend("torch")
    be.seed_everything(0)
    model = be.build(ModelSpec(cnn=ModelArch(channels=(4,), hidden=8, dropout=0.0)), (8, 8, 1), 3)
    artifacts.save_model(be, model, tmp_path / "m.model")
    xs = np.random.default_rng(0).random((64, 8, 8, 1), dtype=np.float32)
    mem = peak_memory("torch", tmp_path / "m.model", xs, 32)
    assert mem["memory_batch_size"] == 32
    assert mem["memory_peak_rss_mb"] > 50  # an interpreter with torch loaded
    assert 0 <= mem["memory_inference_peak_mb"] < mem["memory_peak_rss_mb"]
    assert mem["memory_model_load_mb"] >= 0


def test_peak_memory_failure_is_one_line(tmp_path):
    from greenpipe.errors import GreenpipeError
    from greenpipe.evaluate.memory import peak_memory

    with pytest.raises(GreenpipeError, match="memory measurement of .*m.model.* failed.*nope"):
        peak_memory("nope", tmp_path / "m.model", np.zeros((2, 8, 8, 1)), 2)


def test_energy_rounds_take_the_models_in_turn(x):
    from greenpipe.evaluate.speed import energy_rounds

    order: list[str] = []
    task = _fake_task(SimpleNamespace(energy_j=1e-3, duration_s=1.0), order, [])
    predicts = {"a": FakePredict(), "b": FakePredict()}
    out = energy_rounds(predicts, x, 5, 10, task, repeats=3, min_seconds=0)
    assert order == ["a#0", "b#0", "a#1", "b#1", "a#2", "b#2"]
    assert set(out) == {"a", "b"} and out["a"]["energy_repeats"] == 3
    assert out["b"]["energy_per_1k_j"] == pytest.approx(1e-3 / 10 * 1000)
