"""The machine's idle power, measured in the same CodeCarbon mode as the stages, and the
active energy of a span: gross energy minus idle power x duration, per component.

On a machine without energy counters CodeCarbon models RAM as a constant power and the CPU
as TDP x load, so a span's gross energy is close to its wall time; what separates two
techniques is what they add above idle. The idle window is a short quiet span (no work in
this process) sampled every `interval_s`; its mean power per component and the spread of
the per-interval powers are kept for `max_age_s` per host and mode, so every stage of a run
(and of the runs after it) subtracts the same baseline.
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from greenpipe.cache import CACHE_ENV, cache_dir  # noqa: F401 - CACHE_ENV: named here too
from greenpipe.tracking.energy import PARTS, EnergyMeter, EnergyReading


@dataclass(frozen=True)
class IdleBaseline:
    """Mean power (W) per component over a quiet window, the standard deviation of the
    per-interval powers (W), the window's length (s), the machine's CPU utilisation over it
    (%, from psutil: a busy machine gives a high baseline) and when it was measured (epoch s).
    """

    cpu_power_w: float
    gpu_power_w: float
    ram_power_w: float
    cpu_power_std_w: float
    gpu_power_std_w: float
    ram_power_std_w: float
    window_s: float
    samples: int
    tracking_mode: str
    host: str
    machine_cpu_percent: float
    measured_at_unix_s: float

    @property
    def power_w(self) -> float:
        return self.cpu_power_w + self.gpu_power_w + self.ram_power_w

    def as_metrics(self) -> dict[str, Any]:
        d = asdict(self)
        d["power_w"] = self.power_w
        d["age_s"] = max(time.time() - self.measured_at_unix_s, 0.0)
        return d

    def to_json(self) -> str:
        """The cache file's and RUN_ENV's form."""
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> IdleBaseline:
        """A baseline from to_json's text (ValueError, KeyError or TypeError if it is not)."""
        fields = json.loads(text)
        return cls(**{k: fields[k] for k in cls.__dataclass_fields__})

    def of(self, tracking_mode: str) -> bool:
        """Measured on this host, in this CodeCarbon mode."""
        return self.host == socket.gethostname() and self.tracking_mode == tracking_mode

    def active(self, reading: EnergyReading) -> dict[str, float]:
        """Active energy (J) of a span: per component max(0, gross - idle power x duration),
        and their sum. A span in another CodeCarbon mode than the baseline is refused."""
        if reading.tracking_mode != self.tracking_mode:
            raise ValueError(
                f"idle baseline measured in {self.tracking_mode} mode cannot be subtracted "
                f"from a {reading.tracking_mode}-mode figure"
            )
        out = {}
        for p in PARTS:
            idle_j = getattr(self, f"{p}_power_w") * reading.duration_s
            out[f"active_{p}_j"] = max(getattr(reading, f"{p}_j") - idle_j, 0.0)
        out["active_energy_j"] = sum(out[f"active_{p}_j"] for p in PARTS)
        return out


def measure(
    country_iso_code: str, tracking_mode: str, seconds: float, interval_s: float = 0.5
) -> IdleBaseline:
    """Sit quietly for `seconds` under a fresh tracker and return the baseline."""
    import psutil

    meter = EnergyMeter(country_iso_code, max(interval_s, 0.5), "idle", tracking_mode)
    meter.start()
    psutil.cpu_percent(interval=None)
    powers: dict[str, list[float]] = {p: [] for p in PARTS}
    prev = first = meter.sample()
    try:
        while prev.t - first.t < seconds - 1e-3:
            time.sleep(interval_s)
            now = meter.sample()
            r = now.minus(prev, tracking_mode)
            for p in PARTS:
                powers[p].append(getattr(r, f"{p}_power_w"))
            prev = now
    finally:
        meter.stop()
    whole = prev.minus(first, tracking_mode)
    spread = {p: statistics.pstdev(v) if len(v) > 1 else 0.0 for p, v in powers.items()}
    return IdleBaseline(
        cpu_power_w=whole.cpu_power_w,
        gpu_power_w=whole.gpu_power_w,
        ram_power_w=whole.ram_power_w,
        cpu_power_std_w=spread["cpu"],
        gpu_power_std_w=spread["gpu"],
        ram_power_std_w=spread["ram"],
        window_s=whole.duration_s,
        samples=len(powers["cpu"]),
        tracking_mode=tracking_mode,
        host=socket.gethostname(),
        machine_cpu_percent=float(psutil.cpu_percent(interval=None)),
        measured_at_unix_s=time.time(),
    )


def _cache_path(tracking_mode: str) -> Path:
    return cache_dir() / f"idle-{socket.gethostname()}-{tracking_mode}.json"


def load_cached(tracking_mode: str, max_age_s: float) -> IdleBaseline | None:
    """The cached baseline of this host and mode if younger than `max_age_s`, else None."""
    try:
        base = IdleBaseline.from_json(_cache_path(tracking_mode).read_text())
    except (OSError, ValueError, KeyError, TypeError):
        return None
    fresh = 0 <= time.time() - base.measured_at_unix_s <= max_age_s
    return base if fresh and base.of(tracking_mode) else None


def baseline(
    country_iso_code: str, tracking_mode: str, seconds: float, max_age_s: float
) -> IdleBaseline:
    """The cached baseline, or a new one measured now and cached (written atomically)."""
    cached = load_cached(tracking_mode, max_age_s)
    if cached is not None:
        return cached
    base = measure(country_iso_code, tracking_mode, seconds)
    path = _cache_path(tracking_mode)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(base.to_json())
    os.replace(tmp, path)
    return base


# the baseline that every stage of one flow run subtracts (JSON), set by the flow for them
RUN_ENV = "GREENPIPE_IDLE_BASELINE"


def of_run(tracking_mode: str, environ=os.environ) -> IdleBaseline | None:
    """The baseline the flow running this stage took at its start (RUN_ENV), if it is of this
    host and mode, else None. Every stage of one run subtracts that one: with only the cache,
    a run longer than idle_max_age_s changed baselines mid-run, and the stage that found it
    expired measured a new one (5 s in its wall time, beside the flow's processes)."""
    from greenpipe.errors import GreenpipeError

    raw = environ.get(RUN_ENV)
    if not raw:
        return None
    try:
        base = IdleBaseline.from_json(raw)
    except (ValueError, KeyError, TypeError) as exc:
        raise GreenpipeError(
            f"{RUN_ENV} is not an idle baseline ({type(exc).__name__}: {exc}); unset it, and "
            "the stage uses the cached one"
        ) from None
    return base if base.of(tracking_mode) else None


def baseline_for(tracking: Any, mode: str | None = None) -> IdleBaseline:
    """`baseline` with the settings of a TrackingConfig (in its mode unless `mode`)."""
    mode = mode or tracking.codecarbon_mode
    return baseline(tracking.country_iso_code, mode, tracking.idle_seconds, tracking.idle_max_age_s)
