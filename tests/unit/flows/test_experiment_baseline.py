"""The experiment flow gives every stage of its run one idle baseline (tracking.idle.RUN_ENV):
the cached one that `greenpipe run` measured before anything started, or one measured by the
flow before its stage servers start."""

from __future__ import annotations

import dataclasses
import json
import socket
import time

from greenpipe.config import Params
from greenpipe.flows import experiment
from greenpipe.tracking import idle


def _cached(tmp_path, monkeypatch, **over) -> idle.IdleBaseline:
    monkeypatch.setenv(idle.CACHE_ENV, str(tmp_path))
    base = idle.IdleBaseline(
        1.5, 0.0, 20.0, 0.1, 0.0, 0.0, 5.0, 10, "machine", socket.gethostname(), 2.0, time.time()
    )
    base = dataclasses.replace(base, **over)
    (tmp_path / f"idle-{socket.gethostname()}-machine.json").write_text(
        json.dumps(dataclasses.asdict(base))
    )
    return base


def test_every_stage_of_a_flow_run_gets_the_runs_baseline(tmp_path, monkeypatch):
    cached = _cached(tmp_path, monkeypatch)
    monkeypatch.setattr(idle, "measure", lambda *a, **k: (_ for _ in ()).throw(AssertionError))
    base = experiment.run_baseline(Params().tracking)  # cached and fresh: not measured again
    assert base == cached
    env = experiment.stage_env("parent", "sqlite:///x.db", base)
    assert idle.of_run("machine", env) == cached
    assert idle.RUN_ENV not in experiment.stage_env("parent", "sqlite:///x.db")


def test_a_flow_run_without_tracking_takes_no_baseline(tmp_path, monkeypatch):
    _cached(tmp_path, monkeypatch)
    monkeypatch.setenv("GREENPIPE_TRACKING", "off")
    assert experiment.run_baseline(Params().tracking) is None
