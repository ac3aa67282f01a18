"""What a run ran on and with: git commit, library versions, hardware, DVC file hashes."""

from __future__ import annotations

import hashlib
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

LIBRARIES = (
    "greenpipe",
    "numpy",
    "scikit-learn",
    "torch",
    "tensorflow-cpu",
    "tensorflow",
    "keras",
    "mlflow",
    "prefect",
    "dvc",
    "codecarbon",
)


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}} -> {"a.b": 1}; lists are kept as values."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def git_commit(root: Path) -> str:
    try:
        r = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10
        )
        return r.stdout.strip() if r.returncode == 0 else "none"
    except (OSError, subprocess.SubprocessError):
        return "none"


def library_versions() -> dict[str, str]:
    out = {}
    for lib in LIBRARIES:
        try:
            out[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            continue
    return out


def hardware() -> dict[str, Any]:
    import psutil

    info = {
        "cpu_model": platform.processor() or platform.machine(),
        "cpu_cores_logical": psutil.cpu_count(logical=True),
        "cpu_cores_physical": psutil.cpu_count(logical=False),
        "ram_gib": round(psutil.virtual_memory().total / 2**30, 2),
        "os": platform.platform(),
        "python": platform.python_version(),
    }
    info.update(gpu_info())
    info["cpu_model"] = linux_cpu_model() or info["cpu_model"]
    return info


def linux_cpu_model() -> str | None:
    """The CPU's model name from /proc/cpuinfo (Linux), or None."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip() or None
    except OSError:
        pass
    return None


def gpu_info() -> dict[str, Any]:
    """NVIDIA GPUs through NVML: model, driver, power limit (W); {} when there is none."""
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception:  # no NVML library or no driver: a CPU-only machine
        return {}
    try:
        count = pynvml.nvmlDeviceGetCount()
        info: dict[str, Any] = {
            "gpu_count": count,
            "gpu_driver": pynvml.nvmlSystemGetDriverVersion(),
        }
        for i in range(count):
            h = pynvml.nvmlDeviceGetHandleByIndex(i)
            info[f"gpu{i}_model"] = pynvml.nvmlDeviceGetName(h)
            info[f"gpu{i}_power_limit_w"] = pynvml.nvmlDeviceGetPowerManagementLimit(h) / 1000
        return info
    except Exception:
        return {}
    finally:
        pynvml.nvmlShutdown()


def file_md5(path: Path) -> str:
    """MD5 of a file's bytes, as DVC 3 records it in dvc.lock."""
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def stage_spec(root: Path, stage: str) -> dict[str, Any]:
    """The stage's entry in dvc.yaml (deps, outs, params, metrics, plots), or {}."""
    try:
        spec = yaml.safe_load((root / "dvc.yaml").read_text()) or {}
    except (OSError, yaml.YAMLError):
        return {}
    name, _, key = stage.partition("@")
    entry = (spec.get("stages") or {}).get(name, {}) or {}
    if "do" in entry and key:  # foreach stage: resolve the template for this item
        text = yaml.safe_dump(entry["do"]).replace("${item}", key).replace("${key}", key)
        return yaml.safe_load(text)
    return entry


def paths_of(entries: list[Any]) -> list[str]:
    """The file paths of dvc.yaml deps/outs/metrics entries (a path or {path: options})."""
    return [next(iter(e)) if isinstance(e, dict) else str(e) for e in entries or []]


def stage_hashes(root: Path, stage: str) -> dict[str, str]:
    """{"deps/<path>" | "outs/<path>": md5} for the stage's files that exist now."""
    spec, out = stage_spec(root, stage), {}
    for kind in ("deps", "outs"):
        for rel in paths_of(spec.get(kind, [])):
            p = root / rel
            if p.is_file():
                out[f"{kind}/{rel}"] = file_md5(p)
    return out


RECORDS = "metrics/"  # a stage's record: the JSON output it writes under this folder


def stage_metric_paths(root: Path, stage: str) -> list[str]:
    """The stage's record files (repo-relative): its outputs under metrics/ as dvc.yaml lists
    them (outs with cache: false; the DVC metrics are the report's small headline)."""
    spec = stage_spec(root, stage)
    paths = paths_of(spec.get("outs")) + paths_of(spec.get("metrics"))
    return [p for p in paths if p.startswith(RECORDS) and p.endswith(".json")]


def stage_metric_files(root: Path, stage: str) -> list[Path]:
    """The stage's metrics files under root that exist now."""
    return [root / rel for rel in stage_metric_paths(root, stage) if (root / rel).is_file()]


def lock_stages(root: Path, backends: list[str]) -> list[str]:
    """The stages of this experiment that dvc.lock records (those whose outputs DVC has
    produced). dvc.lock keeps the entries of a framework dropped from train.backends (the
    foreach of the per-framework stages): those are not this experiment's and are left out."""
    try:
        lock = yaml.safe_load((root / "dvc.lock").read_text()) or {}
    except (OSError, yaml.YAMLError):
        return []
    names = list((lock.get("stages") or {}).keys())
    return [s for s in names if "@" not in s or s.split("@", 1)[1] in backends]


def stage_param_keys(root: Path, stage: str) -> list[str]:
    """The params.yaml keys that dvc.yaml lists for the stage."""
    keys: list[str] = []
    for entry in stage_spec(root, stage).get("params", []) or []:
        if isinstance(entry, dict):  # {file: [keys]} or {file: None} (every key of that file)
            for v in entry.values():
                keys.extend(v or [])
        else:
            keys.append(str(entry))
    return keys
