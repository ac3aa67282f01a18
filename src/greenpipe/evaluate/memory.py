"""Peak memory of inference, measured in a fresh child process per model.

tracemalloc sees only Python's own allocations, not the native buffers of torch, TensorFlow
or TFLite, and in a long-lived process the RSS high-water mark still holds the peaks of the
models evaluated before. So each model is measured in a new Python process
(`python -m greenpipe.evaluate.memory`) that reads its resident set size (VmRSS) and its
high-water mark (VmHWM, from /proc/self/status; getrusage's ru_maxrss elsewhere, which on
Linux would inherit the parent's peak across fork and exec) after loading the model, resets
the mark (writing 5 to /proc/self/clear_refs, Linux >= 4.0) and runs inference over the
samples at the given batch size. Figures are in MiB of resident CPU memory (GPU memory is not
counted):

- ``memory_peak_rss_mb``: the process's high-water mark (interpreter, framework, model and
  inference);
- ``memory_model_load_mb``: how much loading the model raised the resident set;
- ``memory_inference_peak_mb``: how far inference raised the resident set above its level
  before inference, at its peak (including one-off set-up on the first call, such as graph
  tracing or interpreter allocation).
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from greenpipe.errors import GreenpipeError

MARK = "GREENPIPE_MEMORY "


def _status_mib(field: str) -> float | None:
    """A memory field of /proc/self/status (VmRSS, VmHWM) in MiB, or None off Linux."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024  # the kernel reports kB
    except OSError:
        pass
    return None


def _rss_mib() -> float:
    rss = _status_mib("VmRSS")
    return rss if rss is not None else _hwm_mib()


def _hwm_mib() -> float:
    """This process's RSS high-water mark in MiB."""
    hwm = _status_mib("VmHWM")
    if hwm is not None:
        return hwm
    raw = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # bytes on macOS, else KiB
    return raw / 2**20 if sys.platform == "darwin" else raw / 1024


def _reset_hwm() -> None:
    """Reset VmHWM to the current RSS where the kernel allows it (else keep the old mark)."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def peak_memory(backend: str, model_path: str | Path, x: np.ndarray, batch_size: int) -> dict:
    """Peak memory (MiB) of inference on `x` at `batch_size`, measured in a fresh process:
    {"memory_peak_rss_mb", "memory_model_load_mb", "memory_inference_peak_mb",
    "memory_batch_size"} (see the module docstring)."""
    with tempfile.TemporaryDirectory() as tmp:
        xs = Path(tmp) / "x.npy"
        np.save(xs, np.ascontiguousarray(x, dtype=np.float32))
        cmd = [sys.executable, "-m", __name__, backend, str(model_path), str(xs), str(batch_size)]
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(MARK)]
    if proc.returncode != 0 or not lines:
        tail = " ".join(proc.stderr.split())[-300:]
        raise GreenpipeError(f"memory measurement of '{model_path}' failed ({tail})")
    return json.loads(lines[-1][len(MARK) :])


def _child(backend_name: str, model_path: str, x_path: str, batch_size: int) -> dict:
    from greenpipe.backends import get_backend

    backend = get_backend(backend_name)
    x = np.load(x_path)
    before_load = _rss_mib()
    model = backend.load(Path(model_path))
    loaded, load_peak = _rss_mib(), _hwm_mib()
    _reset_hwm()
    backend.predict(model, x, batch_size=batch_size)
    peak = _hwm_mib()
    return {
        "memory_peak_rss_mb": max(load_peak, peak),
        "memory_model_load_mb": loaded - before_load,
        "memory_inference_peak_mb": max(peak - loaded, 0.0),
        "memory_batch_size": batch_size,
    }


if __name__ == "__main__":
    name, path, xs, bs = sys.argv[1:5]
    print(MARK + json.dumps(_child(name, path, xs, int(bs))), flush=True)
