"""Training loop: on-device pair sampling, a jitted train step, checkpoints, metrics."""

from __future__ import annotations

import json
import os
import sys
import time

from absl import logging
import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from siamese_jax import checkpoints
from siamese_jax import losses
from siamese_jax import metrics as metrics_lib
from siamese_jax import model
from siamese_jax import pairs
from siamese_jax.omniglot import loader

CONFIG_FILE = "config.json"


@flax.struct.dataclass
class TrainState:
  """Everything the loop needs to continue: step, parameters, optimiser state, RNG key."""

  step: jax.Array
  params: model.Params
  opt_state: optax.OptState
  key: jax.Array


def make_optimizer(train_config: ml_collections.ConfigDict) -> optax.GradientTransformation:
  """The optimiser named by `train.optimizer`."""
  if train_config.optimizer == "adam":
    return optax.adam(train_config.learning_rate, b1=train_config.b1, b2=train_config.b2)
  raise ValueError(f"train.optimizer={train_config.optimizer!r}; choose from ['adam']")


def create_train_state(key: jax.Array, config, optimizer) -> TrainState:
  init_key, key = jax.random.split(key)
  params = model.init(init_key, config.model)
  return TrainState(step=jnp.zeros((), jnp.int32), params=params,
                    opt_state=optimizer.init(params), key=key)


def pair_loss(params, x_a, x_b, labels, dtype=jnp.float32):
  """Mean clamped BCE of pairs; both images of every pair go through one encoder call."""
  b = x_a.shape[0]
  emb = model.encode(params, jnp.concatenate([x_a, x_b]), dtype)
  return losses.mean_clamped_bce(model.pair_logits(params, emb[:b], emb[b:]), labels)


def make_train_step(optimizer, batch_size: int, dtype=jnp.float32):
  """A jitted step(state, images [C, D, H, W, 1]) -> (state, {"loss"}).

  Samples `batch_size` pairs on the device, computes the loss and its gradient and
  applies one optimiser update; the input state's buffers are donated.
  """

  def step(state: TrainState, images: jax.Array):
    key, sample_key = jax.random.split(state.key)
    x_a, x_b, labels = pairs.sample_pairs(sample_key, images, batch_size)
    loss, grads = jax.value_and_grad(pair_loss)(state.params, x_a, x_b, labels, dtype)
    updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    new_state = TrainState(step=state.step + 1, params=params, opt_state=opt_state, key=key)
    return new_state, {"loss": loss}

  return jax.jit(step, donate_argnums=0)


def load_train_images(config) -> loader.CharacterArray:
  """The training characters, resized to the model's input size."""
  return loader.load_characters(
      config.data.train_split,
      alphabets=config.data.train_alphabets,
      drawers=config.data.train_drawers,
      image_size=config.model.image_size,
      data_dir=config.data.data_dir,
      manual_dir=config.data.manual_dir,
  )


def write_config(config, workdir: str) -> None:
  """Records the resolved config in `<workdir>/config.json`."""
  with open(os.path.join(workdir, CONFIG_FILE), "w") as f:
    f.write(config.to_json_best_effort(indent=2, sort_keys=True))


def _format_eta(seconds: float) -> str:
  seconds = int(max(seconds, 0))
  return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class Progress:
  """Prints step, loss, pairs/s and ETA every `log_every` steps; a tqdm bar on a terminal."""

  def __init__(self, start: int, total: int, batch_size: int):
    self.total, self.batch = total, batch_size
    self.last_step, self.last_time = start, time.time()
    self.bar = None
    if sys.stderr.isatty():
      import tqdm  # pylint: disable=g-import-not-at-top

      self.bar = tqdm.tqdm(total=total, initial=start, unit="step", dynamic_ncols=True)

  def update(self, step: int, loss: float) -> float:
    now = time.time()
    rate = (step - self.last_step) / max(now - self.last_time, 1e-9)
    eta = (self.total - step) / max(rate, 1e-9)
    if self.bar is not None:
      self.bar.update(step - self.last_step)
      self.bar.set_postfix(loss=f"{loss:.4f}", pairs_s=f"{rate * self.batch:.0f}")
    else:
      logging.info("step %d/%d  loss %.4f  %.1f pairs/s  ETA %s",
                   step, self.total, loss, rate * self.batch, _format_eta(eta))
    self.last_step, self.last_time = step, now
    return rate * self.batch

  def close(self):
    if self.bar is not None:
      self.bar.close()


def train(config: ml_collections.ConfigDict, workdir: str) -> TrainState:
  """Trains (resuming from the latest checkpoint in workdir) and returns the final state."""
  os.makedirs(workdir, exist_ok=True)
  write_config(config, workdir)
  chars = load_train_images(config)
  logging.info("training on %d characters x %d drawers at %dx%d",
               chars.num_characters, len(chars.drawers), *chars.images.shape[2:4])
  images = jax.device_put(chars.images)

  optimizer = make_optimizer(config.train)
  state = create_train_state(jax.random.PRNGKey(config.seed), config, optimizer)
  logging.info("model has %d parameters", model.num_params(state.params))
  mngr = checkpoints.manager(workdir, config.train.keep_checkpoints)
  restored = checkpoints.restore_latest(mngr, state)
  if restored is not None:
    state = restored
    logging.info("resumed from step %d", int(state.step))

  step_fn = make_train_step(optimizer, config.train.batch_size, jnp.dtype(config.model.dtype))
  writer = metrics_lib.MetricsWriter(workdir, hparams=config.to_dict() and _flat(config))
  start, total = int(state.step), config.train.num_steps
  progress = Progress(start, total, config.train.batch_size)
  pending = []
  try:
    for step in range(start + 1, total + 1):
      state, out = step_fn(state, images)
      pending.append(out["loss"])
      if step % config.train.log_every == 0 or step == total:
        loss = float(jnp.mean(jnp.stack(pending)))  # The only host sync.
        pending = []
        if not np.isfinite(loss):
          raise FloatingPointError(f"loss became {loss} by step {step}")
        pairs_per_s = progress.update(step, loss)
        writer.write(step, {"loss": loss, "pairs_per_s": pairs_per_s})
      if step % config.train.checkpoint_every == 0 or step == total:
        checkpoints.save(mngr, step, state)
  finally:
    progress.close()
    mngr.wait_until_finished()
    mngr.close()
    writer.close()
  metrics_lib.plot_curves(workdir, ("loss",), "loss.png", "training loss")
  return state


def _flat(config) -> dict:
  """Config as flat {"a.b": value} for hparams."""
  out = {}

  def visit(prefix, d):
    for k, v in d.items():
      if isinstance(v, dict):
        visit(f"{prefix}{k}.", v)
      else:
        out[f"{prefix}{k}"] = v

  visit("", config.to_dict())
  return out


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Trains, then evaluates the final parameters; returns the evaluation results."""
  state = train(config, workdir)
  from siamese_jax import evaluate  # pylint: disable=g-import-not-at-top

  return evaluate.evaluate_workdir(config, workdir, params=state.params)
