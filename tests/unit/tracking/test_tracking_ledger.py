"""greenpipe.tracking.ledger on a real MLflow store (SQLite): spent and inherited stages,
the parent's totals, and figures of different CodeCarbon modes never added."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from greenpipe.tracking import ledger, runs


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv(runs.PARENT_ENV, raising=False)
    tracking = SimpleNamespace(mlflow_uri="sqlite:///mlflow.db", artifact_dir="mlartifacts")
    return runs.open_store(tracking, "ledger-test", tmp_path)


def _energy(kwh: float, mode: str = "machine", run_id: str = "old-run") -> dict:
    return {
        "energy_j": kwh,
        "cpu_j": kwh / 4,
        "gpu_j": 0.0,
        "ram_j": kwh * 3 / 4,
        "active_energy_j": kwh / 10,
        "emissions_g": kwh * 0.05,
        "duration_s": kwh * 1e5,
        "tracking_mode": mode,
        "source": {"cpu": "estimated:cpu_load", "gpu": "absent", "ram": "estimated:ram"},
        "record": {"run_id": run_id, "parent_run_id": "old-parent"},
    }


def _spent_child(store, parent: str, stage: str, kwh: float, mode: str = "machine") -> str:
    tags = {runs.TAG_PARENT: parent, "greenpipe.stage": stage, ledger.TAG_MODE: mode}
    run = store.client.create_run(store.exp_id, run_name=stage, tags=tags)
    runs.log_metrics(store.client, run.info.run_id, ledger.figures(_energy(kwh, mode)))
    store.client.set_terminated(run.info.run_id, "FINISHED")
    return run.info.run_id


def _children(store, parent: str) -> list:
    flt = f"tags.`{runs.TAG_PARENT}` = '{parent}'"
    return store.client.search_runs([store.exp_id], flt, max_results=100)


def test_spent_total_is_the_sum_of_the_children_and_inherited_is_apart(store):
    parent = runs.create_parent(store, "p", "dvc", {"seed": 42}, {})
    _spent_child(store, parent, "distill@torch", 3e-5)
    _spent_child(store, parent, "evaluate@torch", 1e-5)
    blocks = {
        "prepare": [{"energy": _energy(1e-7), "classes": 10}],
        "train@torch": [{"energy": _energy(4e-5, run_id="teacher-run"), "val_acc": 0.98}],
        "distill@torch": [{"energy": _energy(9e-9)}],  # it ran here: not inherited
    }
    totals = ledger.reconcile(store, parent, blocks, {"train@torch": "restored"})
    children = _children(store, parent)
    spent_sum = sum(c.data.metrics.get("energy_j", 0.0) for c in children)
    assert totals["spent"]["energy_j"] == pytest.approx(spent_sum) == pytest.approx(4e-5)
    assert totals["inherited"]["energy_j"] == pytest.approx(4e-5 + 1e-7)
    inherited = {c.info.run_name: c for c in children if c.data.tags.get(ledger.TAG_INHERITED)}
    assert sorted(inherited) == ["prepare", "train@torch"]
    train = inherited["train@torch"]
    assert train.data.tags["greenpipe.how"] == "restored"
    assert train.data.tags["greenpipe.inherited_from"] == "teacher-run"
    assert train.data.metrics["inherited_energy_j"] == 4e-5
    assert "energy_j" not in train.data.metrics  # spent nothing
    p = store.client.get_run(parent).data
    assert p.metrics["spent/energy_j"] == pytest.approx(4e-5)
    assert p.metrics["spent/cpu_energy_j"] == pytest.approx(1e-5)
    assert p.metrics["spent/stages"] == 2
    assert p.metrics["inherited/energy_j"] == pytest.approx(4e-5 + 1e-7)
    assert p.metrics["train/torch/val_acc"] == 0.98  # the recorded figures, for comparisons
    assert p.tags["greenpipe.inherited_stages"] == "prepare,train@torch"
    assert p.tags["greenpipe.totals_refused"] == "-"


def test_reconciling_again_adds_nothing_and_a_stage_that_ran_since_is_no_longer_inherited(
    store,
):
    parent = runs.create_parent(store, "p", "dvc", {}, {})
    blocks = {"train@torch": [{"energy": _energy(4e-5)}], "report": [{"energy": _energy(1e-6)}]}
    ledger.reconcile(store, parent, blocks)
    ledger.reconcile(store, parent, blocks)
    assert len(_children(store, parent)) == 2
    _spent_child(store, parent, "report", 2e-6)  # the report stage now runs under it
    totals = ledger.reconcile(store, parent, blocks)
    names = sorted(
        (c.info.run_name, c.data.tags.get(ledger.TAG_INHERITED)) for c in _children(store, parent)
    )
    assert names == [("report", None), ("train@torch", "true")]
    assert totals["spent"]["energy_j"] == pytest.approx(2e-6)
    assert totals["inherited"]["energy_j"] == pytest.approx(4e-5)


def test_figures_of_two_modes_are_never_added(store):
    parent = runs.create_parent(store, "p", "sweep", {}, {})
    _spent_child(store, parent, "distill@torch", 3e-5, mode="process")
    blocks = {
        "train@torch": [{"energy": _energy(4e-5, mode="machine")}],
        "prepare": [{"energy": _energy(1e-7, mode="process")}],
    }
    totals = ledger.reconcile(store, parent, blocks)
    assert "inherited" not in totals and totals["spent"]["energy_j"] == pytest.approx(3e-5)
    p = store.client.get_run(parent).data
    assert "inherited/energy_j" not in p.metrics
    assert "mix CodeCarbon modes ['machine', 'process']" in p.tags["greenpipe.totals_refused"]


def test_an_inherited_stage_whose_outputs_dvc_has_since_replaced_is_inherited_anew(store):
    """Under `dvc repro` a stage can be inherited from one run's files, then restored by DVC
    from another run's cache before the next stage finishes: the ledger follows the files."""
    parent = runs.create_parent(store, "p", "dvc", {}, {})
    ledger.reconcile(store, parent, {"train@torch": [{"energy": _energy(4e-5, run_id="a")}]})
    totals = ledger.reconcile(
        store, parent, {"train@torch": [{"energy": _energy(6e-5, run_id="b")}]}
    )
    (child,) = _children(store, parent)
    assert child.data.tags["greenpipe.inherited_from"] == "b"
    assert child.data.metrics["inherited_energy_j"] == 6e-5
    assert totals["inherited"]["energy_j"] == pytest.approx(6e-5)
    p = store.client.get_run(parent).data
    assert p.metrics["train/torch/energy/energy_j"] == 6e-5
