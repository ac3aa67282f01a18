"""Energy measurement with CodeCarbon's OfflineEmissionsTracker, and where each figure came from.

CodeCarbon either reads a hardware energy counter (RAPL on Intel/AMD CPUs, NVML on NVIDIA
GPUs) or estimates power from a model (CPU TDP scaled by load, a constant, or RAM size).
Which one it used is only visible in private attributes of its hardware objects, so this
module reads them in one place (pinned to codecarbon 3.3, checked by a test).

Spans are windows on one tracker's cumulative totals, as Zeus's begin_window/end_window:
a window's energy is the difference of the totals sampled at its two ends. CodeCarbon's own
task API is not used: its `start_task` stops the tracker's scheduler and resets its last
measured time, so the time between tasks was counted nowhere. Here every sample is taken
under one lock (CodeCarbon's scheduler thread samples too), so no interval is counted twice
or skipped, and a stage's total is exactly its tasks plus the time outside them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

MEASURED_CPU_MODES = {"intel_rapl", "intel_power_gadget", "windows_emi", "apple_powermetrics"}
PARTS = ("cpu", "gpu", "ram")
# CodeCarbon counts kWh and kgCO2e; greenpipe stores J and gCO2e, so that a stage's figures
# keep their significant digits at DVC's default precision (5 decimals)
J_PER_KWH = 3.6e6
G_PER_KG = 1000.0


@dataclass
class EnergyReading:
    """What CodeCarbon reported for one span of work. Energies in J (joules; CodeCarbon's
    kWh x 3.6e6), power in W (the mean over the span: energy / duration), emissions in gCO2e
    (CodeCarbon's kg x 1000), duration in s (wall clock)."""

    energy_j: float
    cpu_j: float
    gpu_j: float
    ram_j: float
    emissions_g: float
    duration_s: float
    cpu_power_w: float
    gpu_power_w: float
    ram_power_w: float
    tracking_mode: str = "machine"

    @property
    def power_mean_w(self) -> float:
        """Mean electrical power over the span: energy / duration."""
        return self.energy_j / self.duration_s if self.duration_s > 0 else 0.0

    def as_metrics(self) -> dict[str, Any]:
        d = asdict(self)
        d["power_mean_w"] = self.power_mean_w
        return d

    @classmethod
    def of_parts(
        cls, parts: dict[str, float], emissions_g: float, duration_s: float, tracking_mode: str
    ) -> EnergyReading:
        """A reading from its per-part energies (J), with the mean powers they imply."""

        def watts(joules: float) -> float:
            return joules / duration_s if duration_s > 0 else 0.0

        return cls(
            energy_j=sum(parts[p] for p in PARTS),
            cpu_j=parts["cpu"],
            gpu_j=parts["gpu"],
            ram_j=parts["ram"],
            emissions_g=emissions_g,
            duration_s=duration_s,
            cpu_power_w=watts(parts["cpu"]),
            gpu_power_w=watts(parts["gpu"]),
            ram_power_w=watts(parts["ram"]),
            tracking_mode=tracking_mode,
        )


@dataclass(frozen=True)
class Sample:
    """The tracker's cumulative totals at one instant (perf_counter seconds; J; gCO2e)."""

    t: float
    cpu_j: float
    gpu_j: float
    ram_j: float
    emissions_g: float

    def minus(self, start: Sample, tracking_mode: str) -> EnergyReading:
        """The window from `start` to this sample."""
        parts = {p: getattr(self, f"{p}_j") - getattr(start, f"{p}_j") for p in PARTS}
        emissions = self.emissions_g - start.emissions_g
        return EnergyReading.of_parts(parts, emissions, max(self.t - start.t, 0.0), tracking_mode)


def visible_gpu_ids(env: dict[str, str] | None = None) -> list[str] | None:
    """The GPUs this run may use, from CUDA_VISIBLE_DEVICES: None when unset (all of them),
    [] when set empty or to -1 (none), else the listed indices or UUIDs."""
    env = os.environ if env is None else env
    if "CUDA_VISIBLE_DEVICES" not in env:
        return None
    ids = [p.strip() for p in env["CUDA_VISIBLE_DEVICES"].split(",") if p.strip()]
    if not ids or ids[0].startswith("-"):
        return []
    return ids


def _cpu_source(h: Any) -> str:
    mode = str(getattr(h, "_mode", "unknown"))
    label = ("measured:" if mode in MEASURED_CPU_MODES else "estimated:") + mode
    if getattr(h, "_is_generic_tdp", False):  # CPU model not in CodeCarbon's table: 4 W/thread
        label += "+generic_tdp"
    return label


def describe_sources(hardware: list[Any], gpu_advanced: bool | None = None) -> dict[str, str]:
    """{"cpu"|"gpu"|"ram": "measured:<how>" | "estimated:<how>" | "absent"} from _hardware.

    A GPU's NVML counter is "measured" only when it was seen to advance (`gpu_advanced`);
    CodeCarbon returns the last value of a counter a GPU does not support, so a counter that
    stood still over a span is "unobserved", not measured.
    """
    src = {"cpu": "absent", "gpu": "absent", "ram": "absent"}
    for h in hardware:
        kind = type(h).__name__.lower()
        part = str(getattr(h, "chip_part", "")).lower()
        if kind == "cpu":
            src["cpu"] = _cpu_source(h)
        elif kind == "gpu":
            seen = "measured" if gpu_advanced else "unobserved"
            src["gpu"] = f"{seen}:nvml_energy_counter"
        elif kind == "applesiliconchip" and part in ("cpu", "gpu"):
            src[part] = "measured:powermetrics"
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


def _contiguous(hardware: Any) -> None:
    """Make each sample of `hardware` cover the time since its own previous sample.

    CodeCarbon 3.3 measures its hardware one after another and hands each the time since
    `_last_measured_time`, which it sets only after the last one: the time between measuring
    one part and that update is counted for no part. Under load (the sampler thread waiting
    for the GIL) this lost 2% of a training stage's span. Timing each part from its own
    previous sample makes the intervals contiguous; the power or counter readings are
    CodeCarbon's own.
    """
    measure = hardware.measure_power_and_energy
    last: list[float] = []

    def contiguous(last_duration: float, **kwargs: Any):
        now = time.perf_counter()
        if last:
            last_duration = now - last[0]
        last[:] = [now]
        return measure(last_duration=last_duration, **kwargs)

    hardware.measure_power_and_energy = contiguous


def tree_cpu_seconds(proc: Any) -> float:
    """CPU seconds (user + system) used so far by `proc` and every descendant, the ones that
    have exited and been waited for included (they live on in their parent's children_*
    times)."""
    import psutil

    total = 0.0
    try:
        procs = [proc, *proc.children(recursive=True)]
    except psutil.Error:
        procs = [proc]
    for p in procs:
        try:
            t = p.cpu_times()
        except psutil.Error:
            continue
        total += t.user + t.system + t.children_user + t.children_system
    return total


def _whole_tree(cpu: Any) -> None:
    """CodeCarbon's process mode sums the CPU time of the processes alive at each sample, and
    a process seen for the first time adds nothing: the CPU time of a child (a DDP rank, a
    peak-memory probe) before the first sample that sees it and after the last one is lost,
    and a child that lives between two samples is never counted. Here the tree's CPU time
    is one cumulative figure, dead children included, so every interval gets all of it."""
    if type(cpu).__name__ != "CPU" or getattr(cpu, "_tracking_mode", None) != "process":
        return
    cpu._get_process_cpu_times = lambda: {cpu._process.pid: tree_cpu_seconds(cpu._process)}


@dataclass
class EnergyMeter:
    """One OfflineEmissionsTracker for a stage; `task(name)` measures a window inside it.

    Use a single meter per process: two trackers on one machine each count the whole machine.
    """

    country_iso_code: str
    measure_power_secs: float
    name: str
    tracking_mode: str = "machine"
    tasks: dict[str, EnergyReading] = field(default_factory=dict)

    def __post_init__(self) -> None:
        from codecarbon import OfflineEmissionsTracker

        _skip_cpuinfo_subprocess()
        os.environ.setdefault("CODECARBON_LOG_LEVEL", "error")
        logging.getLogger("codecarbon").setLevel(logging.ERROR)
        gpu_ids = visible_gpu_ids()
        self._tracker = OfflineEmissionsTracker(
            country_iso_code=self.country_iso_code,
            measure_power_secs=self.measure_power_secs,
            log_level="error",
            allow_multiple_runs=True,  # no lock file that a killed run could leave behind
            tracking_mode=self.tracking_mode,
            output_methods=[],
            project_name="greenpipe",
            experiment_name=self.name,
            gpu_ids=gpu_ids or None,
        )
        logging.getLogger("codecarbon").setLevel(logging.ERROR)
        self._gpu_hidden = gpu_ids == []
        self._lock = threading.Lock()
        self._start: Sample | None = None
        self._gpu_advanced: bool | None = None

    def _sample_locked(self) -> Sample:
        tr = self._tracker
        tr._measure_power_and_energy()
        data = tr._prepare_emissions_data()
        return Sample(
            tr._last_measured_time,  # the instant CodeCarbon's totals are counted up to
            float(data.cpu_energy) * J_PER_KWH,
            float(data.gpu_energy) * J_PER_KWH,
            float(data.ram_energy) * J_PER_KWH,
            float(data.emissions) * G_PER_KG,
        )

    def sample(self) -> Sample:
        """Bring CodeCarbon's totals up to now and return them."""
        with self._lock:
            return self._sample_locked()

    def _serialise_scheduler(self) -> None:
        """Route CodeCarbon's periodic sampling through our lock."""
        sched = getattr(self._tracker, "_scheduler", None)
        if sched is None:
            return
        raw = self._tracker._measure_power_and_energy

        def locked() -> None:
            with self._lock:
                raw()

        sched.function = locked

    def start(self) -> None:
        """Set up the hardware (about 0.5 s on first use, not part of the span), then open
        the span."""
        tr = self._tracker
        tr._ensure_hardware_ready()
        if self._gpu_hidden:  # CUDA_VISIBLE_DEVICES hides every GPU: charge none
            tr._hardware = [h for h in tr._hardware if type(h).__name__ != "GPU"]
        for h in tr._hardware:
            _contiguous(h)
            _whole_tree(h)
        self._serialise_scheduler()
        tr.start()
        self._start = self.sample()

    def stop(self) -> EnergyReading | None:
        """Close the span: its reading from start() to now, or None if CodeCarbon failed."""
        if self._start is None or getattr(self._tracker, "_start_time", None) is None:
            return None
        try:
            with self._lock:
                sched = self._tracker._scheduler
                if sched is not None:
                    sched.stop()
                end = self._sample_locked()
        except Exception:  # CodeCarbon failed: no figure rather than a wrong one
            end = None
        with contextlib.suppress(Exception):  # stop() swallows its errors too
            self._tracker.stop()
        if end is None:
            return None
        reading = end.minus(self._start, self.tracking_mode)
        self._note_gpu(reading)
        return reading

    def _note_gpu(self, reading: EnergyReading) -> None:
        if any(type(h).__name__ == "GPU" for h in self._tracker._hardware or []):
            self._gpu_advanced = bool(self._gpu_advanced) or reading.gpu_j > 0

    @contextlib.contextmanager
    def task(self, name: str) -> Iterator[dict[str, EnergyReading]]:
        """Measure the block as a window of the stage's span; the reading lands in the dict
        (and in `tasks`). Nothing is measured if the meter was never started."""
        box: dict[str, EnergyReading] = {}
        if self._start is None:
            yield box
            return
        begin = self.sample()
        try:
            yield box
        finally:
            reading = self.sample().minus(begin, self.tracking_mode)
            self._note_gpu(reading)
            box["reading"] = self.tasks[name] = reading

    def outside_tasks(self, total: EnergyReading) -> EnergyReading:
        """The part of `total` spent outside every task (set-up, loading, saving, logging)."""
        done = list(self.tasks.values())

        def rest(key: str) -> float:
            return getattr(total, key) - sum(getattr(r, key) for r in done)

        parts = {p: rest(f"{p}_j") for p in PARTS}
        return EnergyReading.of_parts(
            parts, rest("emissions_g"), rest("duration_s"), self.tracking_mode
        )

    def sources(self) -> dict[str, str]:
        """describe_sources, with `/process` on the CPU and RAM estimates in process mode
        (they then cover this process tree only), and `/whole_device` on a GPU in process
        mode (NVML counts the whole device, whoever used it)."""
        hw = getattr(self._tracker, "_hardware", []) or []
        src = describe_sources(hw, self._gpu_advanced)
        if self._gpu_hidden:
            src["gpu"] = "absent:hidden_by_CUDA_VISIBLE_DEVICES"
        if self.tracking_mode == "process":
            for part in ("cpu", "ram"):
                if src[part].startswith("estimated:"):
                    src[part] += "/process"
            if src["gpu"].startswith(("measured:", "unobserved:")):
                src["gpu"] += "/whole_device"
        return src
