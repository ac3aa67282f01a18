"""benchmarks/run_all.py's machine line names the GPUs that provenance.hardware() records
(gpu_count and gpu<i>_model), not a key it never writes."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run_all():
    spec = importlib.util.spec_from_file_location("run_all", ROOT / "benchmarks" / "run_all.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_machine_line_names_the_gpus_provenance_records():
    gpus = _run_all().gpus
    one = {"gpu_count": 1, "gpu_driver": "580", "gpu0_model": "NVIDIA H200"}
    assert gpus(one) == "NVIDIA H200"
    two = {"gpu_count": 2, "gpu0_model": "NVIDIA H200", "gpu1_model": "NVIDIA H200"}
    assert gpus(two) == "2 x NVIDIA H200"
    mixed = {"gpu_count": 2, "gpu0_model": "NVIDIA A100", "gpu1_model": "Tesla T4"}
    assert gpus(mixed) == "NVIDIA A100, Tesla T4"
    assert gpus({"cpu_model": "Xeon"}) == "no GPU"  # gpu_info() gives {} without NVML
