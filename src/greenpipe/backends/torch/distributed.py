"""Data-parallel training with torch.distributed (DDP), launched by torchrun.

gloo on the CPU, NCCL on GPUs. Each rank takes a disjoint share of every global batch and
DDP averages the gradients, with the loss scaled so that the update equals single-process
training on the whole batch (up to floating-point summation order).

A rank's GPU is its LOCAL_RANK (its index on this node), never its global RANK: under
torchrun on two nodes of 4 GPUs, RANK 5 is LOCAL_RANK 1 of the second node.
"""

from __future__ import annotations

import os
import subprocess
import sys

import torch
import torch.distributed as dist

from greenpipe.config import ConfigError

LOCAL_RANK_ENV = "LOCAL_RANK"  # set by torchrun for every rank: its index on this node


def under_torchrun() -> bool:
    return LOCAL_RANK_ENV in os.environ and int(os.environ.get("WORLD_SIZE", "1")) > 1


def local_rank(env: dict[str, str] | None = None) -> int:
    """This rank's index on its node (torchrun's LOCAL_RANK; 0 outside torchrun)."""
    env = os.environ if env is None else env
    return int(env.get(LOCAL_RANK_ENV, "0"))


def check_nproc(nproc: int, gpus: int | None = None) -> None:
    """Refuse (one line) more processes per node than visible GPUs, which NCCL would answer
    with "invalid device ordinal" in every extra rank. `gpus`: the visible GPUs (default:
    torch's count, 0 without CUDA, where gloo runs any number of CPU processes)."""
    gpus = (torch.cuda.device_count() if torch.cuda.is_available() else 0) if gpus is None else gpus
    if gpus and nproc > gpus:
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        where = f" (CUDA_VISIBLE_DEVICES={visible})" if visible is not None else ""
        raise ConfigError(
            f"train.nproc is {nproc} but {gpus} GPU(s) are visible{where}; "
            f"set train.nproc to at most {gpus} (one process per GPU)"
        )


def relaunch_with_torchrun(nproc: int, env: dict[str, str] | None = None) -> int:
    """Run this same command under torchrun with `nproc` processes (with `env` added to the
    environment); returns its exit code."""
    check_nproc(nproc)
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
    """Join the process group set up by torchrun (no-op for a single process); on GPUs,
    each rank first takes the GPU of its LOCAL_RANK."""
    if under_torchrun() and not dist.is_initialized():
        cuda = torch.cuda.is_available()
        if cuda:  # torchrun's LOCAL_WORLD_SIZE: the processes on this node
            check_nproc(int(os.environ.get("LOCAL_WORLD_SIZE", local_rank() + 1)))
            torch.cuda.set_device(local_rank())
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


def reduce_device() -> torch.device:
    """Where a tensor must live to be all-reduced by the process group: NCCL reduces only
    CUDA tensors (this rank's GPU), gloo CPU ones."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def all_sum(value: float) -> float:
    """`value` summed over every rank of the process group (as it is without one)."""
    if not (dist.is_available() and dist.is_initialized()):
        return value
    t = torch.tensor([value], dtype=torch.float64, device=reduce_device())
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
