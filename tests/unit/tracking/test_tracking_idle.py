"""greenpipe.tracking.idle: the idle baseline, active energy above it, and its cache."""

from __future__ import annotations

import json
import time

import pytest

from greenpipe.tracking import idle
from greenpipe.tracking.energy import EnergyReading
from greenpipe.tracking.idle import IdleBaseline


def _base(mode: str = "machine", **over) -> IdleBaseline:
    fields = dict(
        cpu_power_w=2.0,
        gpu_power_w=0.0,
        ram_power_w=20.0,
        cpu_power_std_w=0.1,
        gpu_power_std_w=0.0,
        ram_power_std_w=0.0,
        window_s=5.0,
        samples=10,
        tracking_mode=mode,
        host=idle.socket.gethostname(),
        machine_cpu_percent=3.0,
        measured_at_unix_s=time.time(),
    )
    return IdleBaseline(**{**fields, **over})


def _reading(cpu_w: float, ram_w: float, seconds: float, mode: str = "machine") -> EnergyReading:
    cpu, ram = cpu_w * seconds, ram_w * seconds
    return EnergyReading(cpu + ram, cpu, 0.0, ram, 0.0, seconds, cpu_w, 0.0, ram_w, mode)


def test_active_energy_is_gross_minus_idle_power_times_duration_per_component():
    act = _base().active(_reading(cpu_w=12.0, ram_w=20.0, seconds=36.0))
    assert act["active_cpu_j"] == pytest.approx(10.0 * 36)
    assert act["active_ram_j"] == 0.0
    assert act["active_energy_j"] == pytest.approx(act["active_cpu_j"])


def test_active_energy_never_goes_below_zero():
    act = _base().active(_reading(cpu_w=1.0, ram_w=19.0, seconds=10.0))
    assert act == {
        "active_cpu_j": 0.0,
        "active_gpu_j": 0.0,
        "active_ram_j": 0.0,
        "active_energy_j": 0.0,
    }


def test_a_baseline_of_another_mode_is_refused():
    with pytest.raises(ValueError, match="process mode"):
        _base("process").active(_reading(5.0, 20.0, 1.0, mode="machine"))


def test_a_real_quiet_window_measures_the_modelled_ram_power():
    """CodeCarbon models RAM as a constant power here: the window must find it, with almost
    no spread, and the CPU at or above zero."""
    base = idle.measure("FRA", "machine", seconds=1.5)
    assert base.samples >= 3 and base.window_s == pytest.approx(1.5, abs=0.6)
    assert base.ram_power_w > 0 and base.ram_power_std_w < 0.05 * base.ram_power_w
    assert base.cpu_power_w >= 0 and base.power_w == pytest.approx(
        base.cpu_power_w + base.ram_power_w + base.gpu_power_w
    )


def test_the_baseline_is_reused_per_host_and_mode_until_it_is_too_old(tmp_path, monkeypatch):
    monkeypatch.setenv(idle.CACHE_ENV, str(tmp_path))
    calls = []

    def fake_measure(country, mode, seconds, interval_s=0.5):
        calls.append(mode)
        return _base(mode)

    monkeypatch.setattr(idle, "measure", fake_measure)
    first = idle.baseline("FRA", "machine", 5.0, max_age_s=3600)
    assert idle.baseline("FRA", "machine", 5.0, max_age_s=3600) == first
    assert calls == ["machine"]
    idle.baseline("FRA", "process", 5.0, max_age_s=3600)  # another mode: its own window
    assert calls == ["machine", "process"]
    path = next(tmp_path.glob("idle-*-machine.json"))
    raw = json.loads(path.read_text())
    raw["measured_at_unix_s"] -= 7200
    path.write_text(json.dumps(raw))
    idle.baseline("FRA", "machine", 5.0, max_age_s=3600)  # too old: measured again
    assert calls == ["machine", "process", "machine"]
    assert not list(tmp_path.glob(".*.tmp"))


def test_a_runs_stages_subtract_the_baseline_the_flow_gave_them_even_once_expired(monkeypatch):
    from greenpipe.errors import GreenpipeError

    old = _base(measured_at_unix_s=time.time() - 7200, cpu_power_w=1.234)
    env = {idle.RUN_ENV: old.to_json()}
    assert idle.of_run("machine", env) == old  # older than idle_max_age_s: still the run's
    assert idle.of_run("process", env) is None  # another mode: the stage's own
    assert idle.of_run("machine", {}) is None
    with pytest.raises(GreenpipeError, match=f"{idle.RUN_ENV} is not an idle baseline.*unset"):
        idle.of_run("machine", {idle.RUN_ENV: '{"cpu_power_w": 1}'})


# a stage under stage_run in its own process, given a run's baseline: what its metrics say
STAGE = """
import json, sys
from pathlib import Path
from greenpipe.config import Params
from greenpipe.tracking.stage import stage_run
root = Path(sys.argv[1])
params = Params.model_validate({"tracking": {"idle_seconds": 1, "measure_power_secs": 1}})
with stage_run("alpha", params, root / "alpha.json", root=root):
    pass
print(json.dumps(json.loads((root / "alpha.json").read_text())["energy"]["idle"]))
"""


def test_a_stage_given_its_runs_baseline_measures_no_window_of_its_own(tmp_path):
    import os
    import subprocess
    import sys

    from greenpipe.tracking import records

    old = _base(measured_at_unix_s=time.time() - 7200, cpu_power_w=1.234)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "GREENPIPE_"))}
    env |= {"GREENPIPE_CACHE_DIR": str(tmp_path / "cache"), idle.RUN_ENV: old.to_json()}
    env[records.LOGGED_BY_ENV] = str(os.getpid())  # as under a flow (nothing logs it here)
    proc = subprocess.run(
        [sys.executable, "-c", STAGE, str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    seen = json.loads(proc.stdout.strip().splitlines()[-1])
    assert seen["cpu_power_w"] == 1.234 and seen["age_s"] >= 7200
    assert not (tmp_path / "cache").exists() or not list((tmp_path / "cache").glob("idle-*"))
