"""Training loops: minibatch SGD with early stopping on val loss, mixed precision (bf16
autocast on the CPU or CUDA, fp16 with loss scaling on CUDA), deterministic or fast kernels
(`FitConfig.deterministic`), a progress bar.

Losses are summed on the device and read once per epoch: a `.item()` per batch would make
the CPU wait for the GPU after every step.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from greenpipe.backends.base import EarlyStopping, History, no_deterministic_kernel
from greenpipe.backends.torch import distributed as ddp
from greenpipe.config import ConfigError, FitConfig

LossFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def to_tensor(x: np.ndarray, device: torch.device) -> torch.Tensor:
    """NHWC NumPy images -> NCHW float tensor on `device`."""
    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))).float().to(device)


def evaluate_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor, bs: int = 512) -> tuple:
    """(mean cross-entropy, accuracy) of `model` on a whole split, in eval mode."""
    model.eval()
    total = torch.zeros((), dtype=torch.float64, device=x.device)
    correct = torch.zeros((), dtype=torch.int64, device=x.device)
    with torch.no_grad():
        for i in range(0, len(x), bs):
            logits = model(x[i : i + bs]).float()
            total += F.cross_entropy(logits, y[i : i + bs], reduction="sum")
            correct += (logits.argmax(1) == y[i : i + bs]).sum()
    return total.item() / max(len(x), 1), correct.item() / max(len(x), 1)


def bf16_native() -> bool:
    """Whether this CPU has bf16 arithmetic (AVX512-BF16 or AMX); without it bf16 is emulated
    and trains slower than fp32."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of train.precision on `device` (None: plain fp32)."""
    cuda = device.type == "cuda"
    if precision == "fp16" and not cuda:
        raise ConfigError("precision fp16 needs a CUDA GPU; use bf16 (or fp32) on the CPU")
    if precision == "auto":
        return torch.float16 if cuda else None
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def _epoch(model, opt, scaler, x, y, cfg: FitConfig, rng, loss_fn, extra) -> float:
    """One pass over the data; under DDP each rank trains on its share of every batch."""
    model.train()
    perm = torch.from_numpy(rng.permutation(len(x))).to(x.device)
    dtype = autocast_dtype(cfg.precision, x.device)
    use_scaler = dtype == torch.float16  # bf16 has fp32's range: no loss scaling
    # in fp32: no autocast context, no grad scaler, no x1.0 loss scale (same numbers,
    # less per-batch work: the loop keeps up with a bare PyTorch loop)
    amp = (
        (lambda: torch.autocast(device_type=x.device.type, dtype=dtype))
        if dtype is not None
        else contextlib.nullcontext
    )
    running = torch.zeros((), dtype=torch.float64, device=x.device)
    for i in range(0, len(x), cfg.batch_size):
        idx, scale = ddp.shard(perm[i : i + cfg.batch_size])
        xb, yb = x[idx], y[idx]
        opt.zero_grad(set_to_none=True)
        with amp():
            logits = model(xb)
            aux = extra(xb) if extra is not None else None
            loss = loss_fn(logits.float(), aux, yb)
        scaled = loss * scale if scale != 1.0 else loss
        if use_scaler:
            scaler.scale(scaled).backward()
            scaler.step(opt)
            scaler.update()
        else:
            scaled.backward()
            opt.step()
        running += loss.detach() * len(idx)
    return ddp.all_sum(running.item()) / len(x)


NONDETERMINISTIC = "does not have a deterministic implementation"  # torch's RuntimeError


@contextlib.contextmanager
def kernels(deterministic: bool, device: torch.device) -> Iterator[None]:
    """Run the block with deterministic kernels only (strict: an op without one raises a
    one-line GreenpipeError naming it) or with the fastest ones (cuDNN autotuning on); the
    previous settings come back after."""
    before = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        torch.backends.cudnn.benchmark,
    )
    torch.use_deterministic_algorithms(deterministic)
    torch.backends.cudnn.benchmark = not deterministic
    try:
        yield
    except RuntimeError as exc:
        if NONDETERMINISTIC not in str(exc):
            raise
        op = str(exc).split(" does not", 1)[0].strip().split()[-1]
        raise no_deterministic_kernel(op, device.type) from None
    finally:
        torch.use_deterministic_algorithms(before[0], warn_only=before[1])
        torch.backends.cudnn.benchmark = before[2]


def train_loop(
    model: nn.Module,
    data: dict,
    cfg: FitConfig,
    device: torch.device,
    seed: int,
    desc: str,
    loss_fn: LossFn,
    extra: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> History:
    """Fit `model` in place; restore the weights of the epoch with the lowest val loss.

    `extra(xb)` supplies a second input to the loss (the teacher's logits for distillation).
    """
    x_tr, y_tr = to_tensor(data["train"][0], device), torch.from_numpy(data["train"][1]).to(device)
    x_va, y_va = to_tensor(data["val"][0], device), torch.from_numpy(data["val"][1]).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    fp16 = autocast_dtype(cfg.precision, device) == torch.float16
    scaler = torch.amp.GradScaler(device.type, enabled=fp16)
    rng = np.random.default_rng(seed)
    hist = History()
    stop = EarlyStopping(
        cfg.patience, lambda: copy.deepcopy(model.state_dict()), model.load_state_dict
    )
    bar = tqdm(
        range(1, cfg.epochs + 1),
        desc=desc,
        unit="epoch",
        leave=True,
        mininterval=1.0,
        disable=not ddp.is_main(),
    )
    trained = ddp.wrap(model)  # the same module, wrapped for gradient averaging under DDP
    with kernels(cfg.deterministic, device):
        for epoch in bar:
            train_loss = _epoch(trained, opt, scaler, x_tr, y_tr, cfg, rng, loss_fn, extra)
            val_loss, val_acc = evaluate_loss(model, x_va, y_va)
            hist.epochs.append(
                {"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss, "val_acc": val_acc}
            )
            post = {"loss": f"{train_loss:.3f}", "val_loss": f"{val_loss:.3f}"}
            bar.set_postfix(post | {"acc": f"{val_acc:.3f}"})
            if stop.update(val_loss):
                break
    bar.close()
    stop.restore(hist)
    model.eval()
    return hist
