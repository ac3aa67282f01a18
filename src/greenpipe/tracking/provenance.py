"""What a run ran on and with: git commit, library versions, hardware; a stage as DVC
resolves dvc.yaml, and DVC's hashes of what the stage read and wrote.

Every stage spec here (its cmd, deps, outs, params) is DVC's own resolution of dvc.yaml
(foreach and matrix expanded, `${...}` interpolated), never a second expansion of it. The
stage process uses DVC's resolver alone (`dvc.parsing.DataResolver`, ~0.1 s, not the
repository index, ~0.8 s); tests/contract checks that it agrees with `Repo(root).index`.
"""

from __future__ import annotations

import contextlib
import functools
import platform
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
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
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


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


# --- the stages, as DVC resolves dvc.yaml -------------------------------------------------


def _stamp(*paths: Path) -> tuple:
    """What tells a cached read of these files from a stale one: mtime and size of each."""
    out = []
    for p in paths:
        try:
            st = p.stat()
            out.append((st.st_mtime_ns, st.st_size))
        except OSError:
            out.append(None)
    return tuple(out)


def _read_yaml(path: Path) -> dict:
    """A YAML mapping, or {} if the file is missing, unreadable or not a mapping."""
    try:
        data = yaml.load(path.read_text(), Loader=_LOADER)
    except (OSError, yaml.YAMLError):
        return {}
    return data if isinstance(data, dict) else {}


def _resolve(root: Path) -> dict[str, dict]:
    """DVC's resolver (the one `dvc repro` loads dvc.yaml with) over root's dvc.yaml and
    params.yaml: {stage: its resolved entry}, in dvc.yaml's order."""
    from types import SimpleNamespace

    from dvc.parsing import DataResolver
    from dvc_objects.fs.local import LocalFileSystem

    d = _read_yaml(root / "dvc.yaml")
    if not d:
        return {}
    # the resolver needs a repo only for its filesystem and its `parsing` config
    resolver = DataResolver(SimpleNamespace(fs=LocalFileSystem(), config={}), str(root), d)
    out: dict[str, dict] = {}
    for key in resolver.get_keys():
        out.update(resolver.resolve_one(key))
    return out


@functools.lru_cache(maxsize=8)
def _resolved(root: str, stamp: tuple) -> dict[str, dict]:
    return _resolve(Path(root))


def resolved_stages(root: Path, params: dict | None = None) -> dict[str, dict]:
    """{stage name (`train@torch`): its dvc.yaml entry as DVC resolves it}, or {} without a
    readable dvc.yaml. Entries keep dvc.yaml's form: deps and outs as paths, or {path:
    options}. With `params` (params.yaml's content), resolved for those params instead, in a
    temporary copy (see resolution_copy)."""
    if params is not None:
        with resolution_copy(root, params) as tmp:
            return _resolve(tmp)
    root = Path(root).resolve()
    return dict(_resolved(str(root), _stamp(root / "dvc.yaml", root / "params.yaml")))


@contextlib.contextmanager
def resolution_copy(root: Path, params: dict, dvc_repo: bool = False) -> Iterator[Path]:
    """A temporary folder with root's dvc.yaml (and the files its `vars` name) and `params`
    as its params.yaml: what DVC resolves for an experiment with those params (`dvc exp run
    -S` writes them to params.yaml the same way). With dvc_repo, the folder is also a DVC
    repository (no git), for DVC's index and graph. Nothing of root is changed."""
    root = Path(root)
    with tempfile.TemporaryDirectory(prefix="greenpipe-resolve-") as tmp:
        dest = Path(tmp)
        shutil.copy2(root / "dvc.yaml", dest / "dvc.yaml")
        for name in _read_yaml(root / "dvc.yaml").get("vars") or []:
            src = root / str(name).partition(":")[0]
            if isinstance(name, str) and src.is_file() and src.name != "params.yaml":
                (dest / src.relative_to(root)).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dest / src.relative_to(root))
        (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        if dvc_repo:
            from dvc.repo import Repo

            Repo.init(str(dest), no_scm=True).close()
        yield dest


def stage_spec(root: Path, stage: str) -> dict[str, Any]:
    """The stage's entry in dvc.yaml as DVC resolves it (cmd, deps, outs, params, metrics,
    plots), or {}."""
    return resolved_stages(root).get(stage, {})


def paths_of(entries: list[Any]) -> list[str]:
    """The file paths of dvc.yaml deps/outs/metrics entries (a path or {path: options})."""
    return [next(iter(e)) if isinstance(e, dict) else str(e) for e in entries or []]


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
    names = list((_read_yaml(Path(root) / "dvc.lock").get("stages") or {}).keys())
    return [s for s in names if "@" not in s or s.split("@", 1)[1] in backends]


def stage_param_keys(root: Path, stage: str) -> list[str]:
    """The params.yaml keys that dvc.yaml lists for the stage (`train@torch`: those of the
    `train` foreach template), read as plain YAML, without DVC: the stage process reads them
    before any work. No params entry of this dvc.yaml is interpolated, so this is DVC's
    resolution too (tests/contract checks it for every stage)."""
    definition = (_read_yaml(Path(root) / "dvc.yaml").get("stages") or {}).get(
        stage.partition("@")[0]
    )
    if not isinstance(definition, dict):
        return []
    if "foreach" in definition or "matrix" in definition:
        definition = definition.get("do") or {}
    keys: list[str] = []
    for entry in definition.get("params") or []:
        if isinstance(entry, dict):  # {file: [keys]} or {file: None} (every key of that file)
            for v in entry.values():
                keys.extend(v or [])
        else:
            keys.append(str(entry))
    return keys
