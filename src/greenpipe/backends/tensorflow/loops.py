"""Training loop: minibatch Adam with early stopping on val loss, a progress bar.

The same semantics as the torch `train_loop`: the data are shuffled each epoch by a NumPy
generator seeded with the run seed, and `backends.base.EarlyStopping` picks the best epoch,
stops and restores its weights.
One minibatch is one `tf.function` call; a short last batch costs one more trace, not one per
epoch (reduce_retracing).
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Callable, Iterator

import keras
import numpy as np
import tensorflow as tf
from tqdm.auto import tqdm

from greenpipe.backends.base import EarlyStopping, History, no_deterministic_kernel
from greenpipe.config import FitConfig

LossFn = Callable[[tf.Tensor, tf.Tensor | None, tf.Tensor], tf.Tensor]
_predictors: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def predictor(model: keras.Model) -> Callable[[np.ndarray], tf.Tensor]:
    """The model's inference function: float32 logits, traced once for any batch size.

    Cached per model (and dropped with it); it holds the model only weakly, so the cache
    keeps no model alive. Keras' `predict_on_batch` would trace each model once per new
    batch shape and warn about retracing when a stage handles several models.
    """
    fn = _predictors.get(model)
    if fn is None:
        ref = weakref.ref(model)
        spec = tf.TensorSpec([None, *model.input_shape[1:]], tf.float32)
        fn = tf.function(
            lambda x: tf.cast(ref()(x, training=False), tf.float32), input_signature=[spec]
        )
        _predictors[model] = fn
    return fn


def cross_entropy(logits: tf.Tensor, _aux: tf.Tensor | None, y: tf.Tensor) -> tf.Tensor:
    """Mean sparse categorical cross-entropy from logits (the `fit` loss)."""
    return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits))


def _train_step(model: keras.Model, opt, loss_fn: LossFn, weight_decay: float):
    """One optimizer step on a batch; returns the batch loss (without the L2 term).

    weight_decay is an L2 penalty added to the gradient (wd * w), as torch.optim.Adam does,
    not Keras' decoupled (AdamW-style) decay, so one params.yaml value means the same in both
    backends.
    """
    variables = model.trainable_variables

    @tf.function(reduce_retracing=True)
    def step(x, y, aux):
        with tf.GradientTape() as tape:
            loss = loss_fn(tf.cast(model(x, training=True), tf.float32), aux, y)
            total = loss
            if weight_decay > 0:
                sq = tf.add_n([tf.reduce_sum(tf.square(v)) for v in variables])
                total = loss + 0.5 * weight_decay * sq
            scaled = opt.scale_loss(total)  # loss scaling under mixed precision, else identity
        opt.apply(tape.gradient(scaled, variables), variables)
        return loss

    return step


def _eval_step(model: keras.Model):
    @tf.function(reduce_retracing=True)
    def step(x, y):
        logits = tf.cast(model(x, training=False), tf.float32)
        ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits)
        correct = tf.cast(tf.equal(tf.argmax(logits, axis=1), y), tf.int64)
        return tf.reduce_sum(ce), tf.reduce_sum(correct)

    return step


def evaluate_loss(step, x: np.ndarray, y: np.ndarray, bs: int = 512) -> tuple[float, float]:
    """(mean cross-entropy, accuracy) on a whole split, in inference mode."""
    total, correct = 0.0, 0
    for i in range(0, len(x), bs):
        ce, ok = step(x[i : i + bs], y[i : i + bs])
        total, correct = total + float(ce), correct + int(ok)
    return total / max(len(x), 1), correct / max(len(x), 1)


def _epoch(step, x, y, aux, batch_size: int, rng: np.random.Generator) -> float:
    perm = rng.permutation(len(x))
    losses, sizes = [], []
    for i in range(0, len(x), batch_size):
        idx = perm[i : i + batch_size]
        losses.append(step(x[idx], y[idx], None if aux is None else aux[idx]))
        sizes.append(len(idx))
    return float(np.dot([float(v) for v in losses], sizes) / len(x))


@contextlib.contextmanager
def kernels(deterministic: bool) -> Iterator[None]:
    """Run the block with TensorFlow's op determinism on (strict: an op without a
    deterministic kernel raises a one-line GreenpipeError naming it) or off (fastest
    kernels); the previous setting comes back after."""
    from tensorflow.python.framework import config  # op determinism can only be read here

    before = config.is_op_determinism_enabled()
    if deterministic:
        config.enable_op_determinism()
    else:
        config.disable_op_determinism()
    try:
        yield
    except tf.errors.UnimplementedError as exc:
        if "eterministic" not in exc.message:
            raise
        what = exc.message.strip().splitlines()[0][:200] if exc.message.strip() else "an op"
        raise no_deterministic_kernel(f"a TensorFlow op ({what})", "this device") from None
    finally:
        (config.enable_op_determinism if before else config.disable_op_determinism)()


def make_optimizer(cfg: FitConfig, mixed: bool) -> keras.optimizers.Optimizer:
    """Adam at cfg.lr, wrapped for dynamic loss scaling when training in mixed precision."""
    opt = keras.optimizers.Adam(learning_rate=cfg.lr)
    return keras.optimizers.LossScaleOptimizer(opt) if mixed else opt


def train_loop(
    model: keras.Model,
    data: dict,
    cfg: FitConfig,
    seed: int,
    desc: str,
    loss_fn: LossFn,
    aux: np.ndarray | None = None,
    mixed: bool = False,
) -> History:
    """Fit `model` in place; restore the weights of the epoch with the lowest val loss.

    `aux` holds a second per-sample input to the loss, aligned with the train split (the
    teacher's logits for distillation).
    """
    x_tr, y_tr = data["train"]
    x_va, y_va = data["val"]
    x_tr, x_va = x_tr.astype(np.float32, copy=False), x_va.astype(np.float32, copy=False)
    y_tr, y_va = y_tr.astype(np.int64, copy=False), y_va.astype(np.int64, copy=False)
    opt = make_optimizer(cfg, mixed)
    opt.build(model.trainable_variables)
    step, evaluate = _train_step(model, opt, loss_fn, cfg.weight_decay), _eval_step(model)
    rng = np.random.default_rng(seed)
    hist = History()
    stop = EarlyStopping(cfg.patience, model.get_weights, model.set_weights)  # NumPy copies
    bar = tqdm(range(1, cfg.epochs + 1), desc=desc, unit="epoch", leave=True, mininterval=1.0)
    with kernels(cfg.deterministic):
        for epoch in bar:
            train_loss = _epoch(step, x_tr, y_tr, aux, cfg.batch_size, rng)
            val_loss, val_acc = evaluate_loss(evaluate, x_va, y_va)
            hist.epochs.append(
                {"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss, "val_acc": val_acc}
            )
            post = {"loss": f"{train_loss:.3f}", "val_loss": f"{val_loss:.3f}"}
            post["acc"] = f"{val_acc:.3f}"
            bar.set_postfix(post, refresh=False)  # redraws are throttled by mininterval
            if stop.update(val_loss):
                break
    bar.close()
    stop.restore(hist)
    return hist
