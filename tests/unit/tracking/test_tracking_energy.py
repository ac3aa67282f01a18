"""greenpipe.tracking.energy: where each figure came from, readings, and one real CodeCarbon run."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from greenpipe.tracking.energy import EnergyMeter, EnergyReading, describe_sources, visible_gpu_ids


def _hw(cls_name: str, **attrs):
    """A stand-in for a CodeCarbon hardware object: only its class name and attributes count."""
    return type(cls_name, (), attrs)()


@pytest.mark.parametrize(
    "mode, expected",
    [
        ("intel_rapl", "measured:intel_rapl"),
        ("windows_emi", "measured:windows_emi"),
        ("intel_power_gadget", "measured:intel_power_gadget"),
        ("cpu_load", "estimated:cpu_load"),
        ("constant", "estimated:constant"),
    ],
)
def test_cpu_mode(mode, expected):
    src = describe_sources([_hw("CPU", _mode=mode)])
    assert src == {"cpu": expected, "gpu": "absent", "ram": "absent"}


def test_cpu_without_a_mode_is_estimated_unknown():
    assert describe_sources([_hw("CPU")])["cpu"] == "estimated:unknown"


def test_a_gpu_counter_is_measured_only_when_it_advanced():
    hw = [_hw("RAM"), _hw("CPU", _mode="cpu_load"), _hw("GPU")]
    assert describe_sources(hw, gpu_advanced=True) == {
        "cpu": "estimated:cpu_load",
        "gpu": "measured:nvml_energy_counter",
        "ram": "estimated:ram_size_model",
    }
    # CodeCarbon returns the last value of an unsupported counter: 0 kWh is not "measured"
    assert describe_sources(hw, gpu_advanced=False)["gpu"] == "unobserved:nvml_energy_counter"
    assert describe_sources(hw)["gpu"] == "unobserved:nvml_energy_counter"


def test_a_cpu_missing_from_codecarbons_table_says_its_tdp_is_generic():
    cpu = _hw("CPU", _mode="cpu_load", _is_generic_tdp=True)
    assert describe_sources([cpu])["cpu"] == "estimated:cpu_load+generic_tdp"


@pytest.mark.parametrize(
    "env, expected",
    [
        ({}, None),
        ({"CUDA_VISIBLE_DEVICES": ""}, []),
        ({"CUDA_VISIBLE_DEVICES": "-1"}, []),
        ({"CUDA_VISIBLE_DEVICES": "1,3"}, ["1", "3"]),
        ({"CUDA_VISIBLE_DEVICES": "GPU-5f2a, GPU-77b1"}, ["GPU-5f2a", "GPU-77b1"]),
    ],
)
def test_visible_gpus_come_from_cuda_visible_devices(env, expected):
    assert visible_gpu_ids(env) == expected


def test_hidden_gpus_are_not_charged(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    meter = EnergyMeter("FRA", 1.0, "unit-test")
    meter._tracker._ensure_hardware_ready()
    meter._tracker._hardware.append(_hw("GPU"))  # as if NVML had found one
    meter.start()
    try:
        assert "GPU" not in [type(h).__name__ for h in meter._tracker._hardware]
    finally:
        meter.stop()
    assert meter.sources()["gpu"] == "absent:hidden_by_CUDA_VISIBLE_DEVICES"


def test_nothing_is_absent_and_unknown_classes_are_ignored():
    assert describe_sources([]) == {"cpu": "absent", "gpu": "absent", "ram": "absent"}
    assert describe_sources([_hw("TPU"), _hw("CPUish", _mode="intel_rapl")]) == {
        "cpu": "absent",
        "gpu": "absent",
        "ram": "absent",
    }


def test_apple_silicon_cpu_part_is_the_cpu():
    hw = [
        _hw("RAM"),
        _hw("AppleSiliconChip", chip_part="CPU"),
        _hw("AppleSiliconChip", chip_part="GPU"),
    ]
    src = describe_sources(hw)
    assert src["cpu"].startswith("measured:")
    assert src["gpu"].startswith("measured:")


# --- EnergyReading -------------------------------------------------------------------------


def _reading(energy_j: float, duration_s: float) -> EnergyReading:
    return EnergyReading(
        energy_j, energy_j / 2, 0.0, energy_j / 2, 1e-6, duration_s, 10.0, 0.0, 5.0
    )


def test_power_mean_is_energy_over_duration():
    assert _reading(3600.0, 3.6).power_mean_w == pytest.approx(1000.0)
    assert _reading(2e-6, 0.5).power_mean_w == pytest.approx(2e-6 / 0.5)
    assert _reading(1e-3, 0.0).power_mean_w == 0.0


def test_as_metrics_adds_power_mean():
    m = _reading(3600.0, 3.6).as_metrics()
    assert m["power_mean_w"] == pytest.approx(1000.0)
    assert m["energy_j"] == 3600.0 and m["duration_s"] == 3.6 and m["ram_power_w"] == 5.0


def test_of_parts_adds_the_parts_and_derives_their_mean_powers():
    r = EnergyReading.of_parts({"cpu": 36.0, "gpu": 0.0, "ram": 72.0}, 1.5e-6, 3.6, "process")
    assert r.energy_j == pytest.approx(108.0)
    assert (r.cpu_j, r.ram_j, r.gpu_j) == (36.0, 72.0, 0.0)
    assert r.cpu_power_w == pytest.approx(10.0) and r.ram_power_w == pytest.approx(20.0)
    assert (r.emissions_g, r.duration_s, r.tracking_mode) == (1.5e-6, 3.6, "process")
    assert EnergyReading.of_parts({"cpu": 1e-5, "gpu": 0, "ram": 0}, 0, 0.0, "x").cpu_power_w == 0


# --- real CodeCarbon -----------------------------------------------------------------------


def _busy(seconds: float) -> float:
    """CPU work for about `seconds` of wall clock; returns the time it took."""
    t0 = time.perf_counter()
    acc = 0
    while time.perf_counter() - t0 < seconds:
        acc += sum(i * i for i in range(10_000))
    assert acc > 0
    return time.perf_counter() - t0


def _covered_s(r) -> float:
    """The seconds a reading's RAM energy covers: CodeCarbon models RAM as a constant power
    here, so RAM energy / RAM power is a clock of the span the figure really covers."""
    return r.ram_j / r.ram_power_w


def test_stage_energy_covers_its_whole_span_tasks_gaps_and_all():
    """Tasks, idle gaps and work between them, with the gaps longer than CodeCarbon's sampling
    interval: the total covers the whole span, each task its own, and the parts add up.
    (CodeCarbon's start_task reset its clock, so the time before each task was lost.) Two
    busy processes load every core meanwhile, as a training loop does: CodeCarbon's sampler
    is then preempted between measuring one part and the next."""
    load = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"])
        for _ in range(os.cpu_count() or 2)
    ]
    meter = EnergyMeter("FRA", 0.5, "unit-test")
    meter.start()
    try:
        _busy(0.3)
        with meter.task("a") as box_a:
            _busy(0.8)
        time.sleep(0.7)
        with meter.task("b"):
            time.sleep(0.2)
            _busy(0.4)
        _busy(0.6)
        with meter.task("c"):
            _busy(0.5)
        time.sleep(0.3)
    finally:
        total = meter.stop()
        for proc in load:
            proc.kill()
            proc.wait()
    assert total is not None and box_a["reading"] is meter.tasks["a"]
    assert _covered_s(total) == pytest.approx(total.duration_s, rel=0.01)
    for name, task in meter.tasks.items():
        assert _covered_s(task) == pytest.approx(task.duration_s, rel=0.01), name
    rest = meter.outside_tasks(total)
    assert rest.duration_s > 1.5  # the gaps and the work between tasks
    for key in ("energy_j", "cpu_j", "ram_j", "duration_s", "emissions_g"):
        parts = sum(getattr(t, key) for t in meter.tasks.values()) + getattr(rest, key)
        assert parts == pytest.approx(getattr(total, key), rel=1e-9), key
    assert rest.energy_j > 0 and all(t.energy_j > 0 for t in meter.tasks.values())
    src = meter.sources()
    assert src["cpu"].startswith(("measured:", "estimated:")), src
    assert set(src) == {"cpu", "gpu", "ram"}


def test_a_short_span_is_measured_whole():
    """A 40 ms span: CodeCarbon's stop() alone would skip its last sample (< 50 ms after the
    one start() takes) and report the energy of well under a millisecond. RAM power is a
    constant of CodeCarbon's model, so its energy must match power x the span's duration."""
    meter = EnergyMeter("FRA", 1.0, "unit-test-short")
    meter.start()
    _busy(0.04)
    reading = meter.stop()
    assert reading is not None and reading.ram_power_w > 0
    ram = next(h for h in meter._tracker._hardware if type(h).__name__ == "RAM")
    # joules: CodeCarbon's modelled RAM watts x the span, not its kWh figure unconverted
    covered_s = reading.ram_j / ram.total_power().W
    assert covered_s == pytest.approx(reading.duration_s, rel=0.2), (covered_s, reading)


def test_cpu_model_comes_without_the_cpuinfo_subprocess(monkeypatch):
    import cpuinfo

    from greenpipe.tracking import energy, provenance

    monkeypatch.setattr(provenance, "linux_cpu_model", lambda: "Test CPU 9000")
    monkeypatch.setattr(cpuinfo, "get_cpu_info", cpuinfo.get_cpu_info)  # restored afterwards
    energy._skip_cpuinfo_subprocess()
    assert cpuinfo.get_cpu_info() == {"brand_raw": "Test CPU 9000"}


def test_tracking_off_writes_metrics_without_mlflow_or_codecarbon(tmp_path, monkeypatch):
    from greenpipe.config import Params
    from greenpipe.tracking.stage import TRACKING_ENV, stage_run

    monkeypatch.setenv(TRACKING_ENV, "off")
    monkeypatch.chdir(tmp_path)
    with stage_run("alpha", Params(), tmp_path / "m.json", root=tmp_path) as run:
        with run.meter.task("inner") as box:
            pass
        run.log_metrics({"x": 1})
    assert box == {}
    import json

    m = json.loads((tmp_path / "m.json").read_text())
    assert m["x"] == 1 and m["energy"] == {"measured": False, "source": {}}
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "mlartifacts").exists()


def test_process_mode_is_named_in_the_sources():
    meter = EnergyMeter("FRA", 1.0, "unit-test", tracking_mode="process")
    cpu = type("CPU", (), {"_mode": "cpu_load"})()
    ram = type("RAM", (), {})()
    meter._tracker._hardware = [cpu, ram, _hw("GPU")]
    assert meter.sources() == {
        "cpu": "estimated:cpu_load/process",
        "gpu": "unobserved:nvml_energy_counter/whole_device",
        "ram": "estimated:ram_size_model/process",
    }
    meter.tracking_mode = "machine"
    assert meter.sources()["cpu"] == "estimated:cpu_load"
    assert meter.sources()["gpu"] == "unobserved:nvml_energy_counter"


def test_process_mode_counts_a_child_that_lived_between_two_samples():
    """A child process (a DDP rank, a peak-memory probe) that starts and exits between two of
    CodeCarbon's samples: process mode must still charge its CPU time to the stage."""
    meter = EnergyMeter("FRA", 30.0, "unit-test", tracking_mode="process")
    meter.start()
    try:
        child = subprocess.run(
            [
                sys.executable,
                "-c",
                "import time\nt=time.process_time()\nwhile time.process_time() - t < 1.0: pass",
            ],
            check=True,
        )
        assert child.returncode == 0
    finally:
        reading = meter.stop()
    cpu = next(h for h in meter._tracker._hardware if type(h).__name__ == "CPU")
    if cpu._mode != "cpu_load":
        pytest.skip(f"CPU measured by {cpu._mode}, not by process CPU time")
    # CodeCarbon's process model: power = TDP x CPU seconds / (wall seconds x cores)
    expected_j = cpu._tdp * 1.0 / cpu._cpu_count
    assert reading.cpu_j == pytest.approx(expected_j, rel=0.25), (reading, expected_j)
