"""Optimisers: Adam (the seed MATLAB example) and Koch et al.'s layer-wise SGD, from optax pieces."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
import optax


def layer_names(params) -> list[str]:
  """Layer names in network order: conv0..conv{L-1}, embed, head."""
  convs = sorted((k for k in params if k.startswith("conv")), key=lambda k: int(k[4:]))
  return convs + ["embed", "head"]


def per_layer(value, names: list[str], what: str) -> dict[str, float]:
  """A scalar broadcast to every layer, or a tuple with one value per layer."""
  if isinstance(value, (int, float)):
    return {n: float(value) for n in names}
  value = tuple(value)
  if len(value) != len(names):
    raise ValueError(f"train.{what} has {len(value)} values; the network has {len(names)} layers {names}")
  return dict(zip(names, map(float, value)))


def layer_rates(train: ml_collections.ConfigDict, names: list[str]) -> dict[str, float]:
  """Each layer's initial SGD rate: learning_rate (scalar or per layer) x lr_scales (empty: 1)."""
  lrs = per_layer(train.learning_rate, names, "learning_rate")
  scales = per_layer(train.lr_scales or 1.0, names, "lr_scales")
  return {n: lrs[n] * scales[n] for n in names}


def koch_lr_schedule(lr: float, steps_per_epoch: int, decay: float):
  """lr * decay**epoch, with epoch = step // steps_per_epoch."""
  return optax.exponential_decay(lr, transition_steps=steps_per_epoch, decay_rate=decay, staircase=True)


def koch_momentum_schedule(start: float, final: float, steps_per_epoch: int, ramp_epochs: int):
  """Momentum rising linearly per epoch from `start` to `final` over `ramp_epochs` epochs."""

  def schedule(step):
    epoch = step // steps_per_epoch
    frac = jnp.minimum(epoch / max(ramp_epochs, 1), 1.0)
    return start + (final - start) * frac

  return schedule


# Adam's learning-rate schedules: name -> (learning_rate, total_steps) -> schedule or constant.
LR_SCHEDULES = {
  "constant": lambda lr, total: lr,
  "cosine": optax.cosine_decay_schedule,  # to 0 over all steps
}


def adam_schedule(train: ml_collections.ConfigDict, steps_per_epoch: int):
  """Adam's learning rate: `LR_SCHEDULES[train.lr_schedule]` over all epochs."""
  return LR_SCHEDULES[train.lr_schedule](train.learning_rate, steps_per_epoch * train.max_epochs)


def decay_mask(params):
  """True at the weights ("w" leaves: conv kernels and dense matrices), False at biases and norm gains."""
  return jax.tree_util.tree_map_with_path(lambda path, _: getattr(path[-1], "key", None) == "w", params)


def adam(train: ml_collections.ConfigDict, params, steps_per_epoch: int) -> optax.GradientTransformation:
  """optax.adam with `adam_schedule` (the seed MATLAB example); with `train.weight_decay` = wd > 0,
  optax.adamw: each step also subtracts learning rate x wd x w from the weights (`decay_mask`)."""
  lr = adam_schedule(train, steps_per_epoch)
  wd = train.weight_decay
  if not wd:
    return optax.adam(lr, b1=train.b1, b2=train.b2)
  return optax.adamw(lr, b1=train.b1, b2=train.b2, weight_decay=wd, mask=decay_mask(params))


def koch_sgd(train: ml_collections.ConfigDict, params, steps_per_epoch: int) -> optax.GradientTransformation:
  """Koch et al.'s layer-wise SGD: for every layer j, an L2 penalty l2_j * w (optax.add_decayed_weights),
  then SGD with momentum whose learning rate (learning_rate_j x lr_scales_j) decays by `lr_decay` per
  epoch and whose momentum rises linearly from `momentum_start` to momentum_j."""
  names = layer_names(params)
  lrs = layer_rates(train, names)
  moms = per_layer(train.momentum, names, "momentum")
  l2s = per_layer(train.l2, names, "l2")
  transforms = {
    n: optax.chain(
      optax.add_decayed_weights(l2s[n]),
      optax.inject_hyperparams(optax.sgd)(
        learning_rate=koch_lr_schedule(lrs[n], steps_per_epoch, train.lr_decay),
        momentum=koch_momentum_schedule(train.momentum_start, moms[n], steps_per_epoch, train.momentum_epochs),
      ),
    )
    for n in names
  }
  labels = {n: jax.tree_util.tree_map(lambda _, n=n: n, params[n]) for n in params}
  return optax.multi_transform(transforms, labels)


# name -> (train config, params, steps per epoch) -> optax transformation; read by the config check.
OPTIMIZERS = {"adam": adam, "koch_sgd": koch_sgd}


def make_optimizer(train: ml_collections.ConfigDict, params, steps_per_epoch: int) -> optax.GradientTransformation:
  """The optimiser named by `train.optimizer` (see `OPTIMIZERS`)."""
  return OPTIMIZERS[train.optimizer](train, params, steps_per_epoch)


def current_learning_rate(train: ml_collections.ConfigDict, step: int, steps_per_epoch: int, names: list[str]) -> float:
  """The learning rate at `step` of the first of the layers `names` (see `layer_names`), for logging."""
  if train.optimizer == "adam":
    sched = adam_schedule(train, steps_per_epoch)
    return float(sched(step) if callable(sched) else sched)
  lr = layer_rates(train, names)[names[0]]
  return float(koch_lr_schedule(lr, steps_per_epoch, train.lr_decay)(step))
