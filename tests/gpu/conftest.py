"""The GPU checks that `make gpu-check` runs on a bare CUDA machine: they need torch and
greenpipe's small dependencies only (no TensorFlow, MLflow, DVC or Prefect; TensorFlow's
checks skip where it is missing). Tests marked `gpu` are skipped, with the reason, where torch
sees no CUDA device; the short pipeline (test_gpu_pipeline.py) runs on any device."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(config, items):
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU: torch.cuda.is_available() is False")
    for item in items:
        if item.get_closest_marker("gpu") is not None:  # keywords hold folder names too
            item.add_marker(skip)
