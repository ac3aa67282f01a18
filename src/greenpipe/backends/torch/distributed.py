"""Data-parallel training with torch.distributed (DDP), launched by torchrun.

gloo on the CPU, NCCL on GPUs. Each rank takes a disjoint share of every global batch and
DDP averages the gradients, with the loss scaled so that the update equals single-process
training on the whole batch (up to floating-point summation order).
"""

from __future__ import annotations

import os
import subprocess
import sys

import torch
import torch.distributed as dist

RANK_ENV = "LOCAL_RANK"


def under_torchrun() -> bool:
    return RANK_ENV in os.environ and int(os.environ.get("WORLD_SIZE", "1")) > 1


def relaunch_with_torchrun(nproc: int, env: dict[str, str] | None = None) -> int:
    """Run this same command under torchrun with `nproc` processes (with `env` added to the
    environment); returns its exit code."""
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={nproc}",
        *sys.argv,
    ]
    return subprocess.run(cmd, env={**os.environ, **(env or {})}).returncode


def init() -> None:
    """Join the process group set up by torchrun (no-op for a single process)."""
    if under_torchrun() and not dist.is_initialized():
        cuda = torch.cuda.is_available()
        if cuda:
            torch.cuda.set_device(int(os.environ[RANK_ENV]))
        dist.init_process_group(backend="nccl" if cuda else "gloo")
        threads = max(1, (os.cpu_count() or 1) // dist.get_world_size())
        torch.set_num_threads(threads)  # ranks share the machine: do not oversubscribe


def active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if active() else 0


def world() -> int:
    return dist.get_world_size() if active() else 1


def is_main() -> bool:
    return rank() == 0


def shard(idx: torch.Tensor) -> tuple[torch.Tensor, float]:
    """This rank's share of a global batch, and the loss scale that makes DDP's gradient
    average equal the mean over the whole batch."""
    if not active():
        return idx, 1.0
    part = idx[rank() :: world()]
    return part, len(part) * world() / len(idx)


def all_sum(value: float) -> float:
    if not active():
        return value
    t = torch.tensor([value], dtype=torch.float64)
    dist.all_reduce(t)
    return float(t.item())


def wrap(model: torch.nn.Module) -> torch.nn.Module:
    if not active():
        return model
    import warnings

    from torch.nn.parallel import DistributedDataParallel

    # single-channel convolutions get gradients with unusual (still correct) strides
    warnings.filterwarnings("ignore", message="Grad strides do not match bucket view strides")
    return DistributedDataParallel(model)


def finish() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
