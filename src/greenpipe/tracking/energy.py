"""Energy measurement with CodeCarbon's OfflineEmissionsTracker, and where each figure came from.

CodeCarbon either reads a hardware energy counter (RAPL on Intel/AMD CPUs, NVML on NVIDIA
GPUs) or estimates power from a model (CPU TDP scaled by load, a constant, or RAM size).
Which one it used is only visible in private attributes of its hardware objects, so this
module reads them in one place (pinned to codecarbon 3.3, checked by a test).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

MEASURED_CPU_MODES = {"intel_rapl", "intel_power_gadget", "windows_emi", "apple_powermetrics"}


@dataclass
class EnergyReading:
    """What CodeCarbon reported for one span of work. Energies in kWh, power in W."""

    energy_kwh: float
    cpu_kwh: float
    gpu_kwh: float
    ram_kwh: float
    emissions_kg: float
    duration_s: float
    cpu_power_w: float
    gpu_power_w: float
    ram_power_w: float

    @property
    def power_mean_w(self) -> float:
        """Mean electrical power over the span: energy / duration."""
        return self.energy_kwh * 3.6e6 / self.duration_s if self.duration_s > 0 else 0.0

    def as_metrics(self) -> dict[str, float]:
        d = asdict(self)
        d["power_mean_w"] = self.power_mean_w
        return d

    @classmethod
    def from_codecarbon(cls, data: Any) -> EnergyReading:
        return cls(
            energy_kwh=float(data.energy_consumed),
            cpu_kwh=float(data.cpu_energy),
            gpu_kwh=float(data.gpu_energy),
            ram_kwh=float(data.ram_energy),
            emissions_kg=float(data.emissions),
            duration_s=float(data.duration),
            cpu_power_w=float(data.cpu_power),
            gpu_power_w=float(data.gpu_power),
            ram_power_w=float(data.ram_power),
        )


def describe_sources(hardware: list[Any]) -> dict[str, str]:
    """{"cpu"|"gpu"|"ram": "measured:<how>" | "estimated:<how>" | "absent"} from _hardware."""
    src = {"cpu": "absent", "gpu": "absent", "ram": "absent"}
    for h in hardware:
        kind = type(h).__name__.lower()
        part = str(getattr(h, "chip_part", "")).lower()
        if kind == "cpu":
            mode = str(getattr(h, "_mode", "unknown"))
            src["cpu"] = ("measured:" if mode in MEASURED_CPU_MODES else "estimated:") + mode
        elif kind == "gpu":
            src["gpu"] = "measured:nvml_energy_counter"
        elif kind == "applesiliconchip" and part in ("cpu", "gpu"):
            src[part] = "measured:powermetrics"
        elif kind == "raspberry" and part in ("cpu", "ram"):
            src[part] = "measured:raspberry_pmic"
        elif kind == "ram":
            src["ram"] = "estimated:ram_size_model"
    return src


def _skip_cpuinfo_subprocess() -> None:
    """Give CodeCarbon the CPU model from /proc/cpuinfo on Linux.

    CodeCarbon asks py-cpuinfo for the model name only (`brand_raw`, to look up the CPU's
    TDP), and py-cpuinfo answers by starting a Python subprocess: about 1 s of every stage.
    On Linux /proc/cpuinfo holds the same name; elsewhere py-cpuinfo is left alone.
    """
    from greenpipe.tracking.provenance import linux_cpu_model

    model = linux_cpu_model()
    if model is None:
        return
    import cpuinfo

    cpuinfo.get_cpu_info = lambda: {"brand_raw": model}


class EnergyMeter:
    """One OfflineEmissionsTracker for a stage; `task(name)` measures a span inside it.

    Use a single meter per process: two trackers on one machine each count the whole machine.
    """

    def __init__(
        self,
        country_iso_code: str,
        measure_power_secs: float,
        name: str,
        tracking_mode: str = "machine",
    ) -> None:
        from codecarbon import OfflineEmissionsTracker

        _skip_cpuinfo_subprocess()
        os.environ.setdefault("CODECARBON_LOG_LEVEL", "error")
        logging.getLogger("codecarbon").setLevel(logging.ERROR)
        self._tracker = OfflineEmissionsTracker(
            country_iso_code=country_iso_code,
            measure_power_secs=measure_power_secs,
            log_level="error",
            allow_multiple_runs=True,  # no lock file that a killed run could leave behind
            tracking_mode=tracking_mode,
            output_methods=[],
            project_name="greenpipe",
            experiment_name=name,
        )
        logging.getLogger("codecarbon").setLevel(logging.ERROR)
        self.tracking_mode = tracking_mode
        self.tasks: dict[str, EnergyReading] = {}

    def start(self) -> None:
        self._tracker.start()
        # after start(): its first call sets up the hardware (about 0.5 s) before the energy
        # span begins, and duration must cover the same span as the energy
        self._t0 = time.perf_counter()

    def stop(self) -> EnergyReading | None:
        """Stop and return the whole span, or None if CodeCarbon could not measure.

        The duration is our own wall clock: CodeCarbon 3.3 restarts its duration clock at
        every start_task, so after a task its `duration` covers only the time since then.

        CodeCarbon's stop() takes its last sample only if the previous one is >= 50 ms old,
        and start() samples once as it starts: a span shorter than about 50 ms beyond that
        sample would get energy for the first fraction of a millisecond only. Sampling here,
        just before stop(), makes its reading cover the whole span (CodeCarbon's own
        measurement over the real interval; nothing is extrapolated).
        """
        if getattr(self._tracker, "_start_time", None) is not None:
            with contextlib.suppress(Exception):  # stop() swallows its errors too
                self._tracker._measure_power_and_energy()
        end = time.perf_counter()  # stop() then spends ~50 ms joining its threads
        self._tracker.stop()
        data = getattr(self._tracker, "final_emissions_data", None)
        if data is None:
            return None
        reading = EnergyReading.from_codecarbon(data)
        reading.duration_s = end - self._t0
        return reading

    def sources(self) -> dict[str, str]:
        """describe_sources, with `/process` on the CPU and RAM estimates in process mode
        (they then cover this process tree only, not the whole machine)."""
        src = describe_sources(getattr(self._tracker, "_hardware", []) or [])
        if self.tracking_mode == "process":
            for part in ("cpu", "ram"):
                if src[part].startswith("estimated:"):
                    src[part] += "/process"
        return src

    def hardware(self) -> dict[str, Any]:
        conf = getattr(self._tracker, "_conf", {}) or {}
        keys = ("cpu_model", "cpu_count", "gpu_model", "gpu_count", "ram_total_size")
        return {k: conf.get(k) for k in keys if conf.get(k) not in (None, "")}

    @contextlib.contextmanager
    def task(self, name: str) -> Iterator[dict[str, EnergyReading]]:
        """Measure the energy of the block as a CodeCarbon task; the reading lands in the dict."""
        box: dict[str, EnergyReading] = {}
        self._tracker.start_task(name)
        try:
            yield box
        finally:
            data = self._tracker.stop_task(name)
            if data is not None:
                box["reading"] = self.tasks[name] = EnergyReading.from_codecarbon(data)
