"""Training loop: on-device pair sampling, a jitted train step, checkpoints, metrics."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import os
import signal
import sys
import threading
import time

from absl import logging
import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from siamese_jax import config_check, input_pipeline, losses, model, optim, selection, sharding
from siamese_jax import metrics as metrics_lib
from siamese_jax import workdir as workdir_lib
from siamese_jax.omniglot import loader


@flax.struct.dataclass
class TrainState:
  """Everything the loop needs to continue exactly: step, parameters, optimiser state,
  RNG key and the early-stopping record (best validation accuracy and its epoch)."""

  step: jax.Array
  params: model.Params
  opt_state: optax.OptState
  key: jax.Array
  best_val: jax.Array
  best_epoch: jax.Array


def steps_per_epoch(train_config: ml_collections.ConfigDict) -> int:
  """Configured steps per epoch, or one pass over the fixed pairs and their distortions."""
  t = train_config
  if t.steps_per_epoch:
    return int(t.steps_per_epoch)
  if not t.fixed_pairs:
    raise ValueError("train.steps_per_epoch=0 needs train.fixed_pairs > 0")
  return max(1, t.fixed_pairs * (1 + t.distortions_per_pair) // t.batch_size)


def create_train_state(key: jax.Array, config) -> tuple[TrainState, optax.GradientTransformation]:
  """Initial state and the optimiser for `config`."""
  init_key, key = jax.random.split(key)
  params = model.init(init_key, config.model)
  optimizer = optim.make_optimizer(config.train, params, steps_per_epoch(config.train))
  state = TrainState(
    step=jnp.zeros((), jnp.int32),
    params=params,
    opt_state=optimizer.init(params),
    key=key,
    best_val=jnp.array(-1.0, jnp.float32),
    best_epoch=jnp.zeros((), jnp.int32),
  )
  return state, optimizer


def initial_params(init_from: str, model_config) -> model.Params:
  """The parameters of a workdir (or of the shipped model, "pretrained") to start training from;
  WorkdirError naming train.init_from when they do not fit `model_config`'s network."""
  from siamese_jax import api  # pylint: disable=g-import-not-at-top

  where = (
    api.pretrained_workdir(init_from) if init_from in api.PRETRAINED and not os.path.isdir(init_from) else init_from
  )
  if not os.path.isdir(where):
    raise workdir_lib.WorkdirError(f"config.train.init_from: {init_from} is neither 'pretrained' nor a workdir")
  try:
    return workdir_lib.load_params(where, model_config)
  except workdir_lib.WorkdirError as e:
    raise workdir_lib.WorkdirError(f"config.train.init_from: {e}") from None


def make_train_step(config, optimizer, mesh=None):
  """A jitted step(state, data) -> (state, {"loss", "grad_norm"}); data from `input_pipeline.make_data`.

  Samples the batch on the device, computes the loss and its gradient and applies
  one optimiser update; the input state's buffers are donated. With a mesh of
  several devices the batch is split along its first axis and the parameters are
  replicated (XLA inserts the gradient all-reduce).
  """
  loss_fn = make_loss(config, sharding.constrain_batch(mesh))

  def step(state: TrainState, data):
    key, batch_key = jax.random.split(state.key)
    loss, grads = jax.value_and_grad(loss_fn)(state.params, batch_key, data)
    updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    grad_norm = optax.global_norm(grads)
    new_state = state.replace(step=state.step + 1, params=params, opt_state=opt_state, key=key)
    return new_state, {"loss": loss, "grad_norm": grad_norm}

  return jax.jit(step, donate_argnums=0)


def make_loss(config: ml_collections.ConfigDict, constrain=lambda x: x):
  """loss(params, key, data): a batch of the configured pair mode, scored by its objective.

  `constrain` marks the batch axis for sharding (see `sharding.constrain_batch`).
  """
  m, t = config.model, config.train
  sample = input_pipeline.batch_fn(t, config.augment if config.augment.enabled else None, constrain)
  entry = losses.OBJECTIVES[t.objective or input_pipeline.PAIR_MODES[t.pair_mode].objective]
  settings = {
    "head": m.head,
    "hard_negatives": t.hard_negatives,
    "margin": t.margin,
    "drawers_per_char": t.drawers_per_char,
  }
  objective = functools.partial(entry.fn, **{k: settings[k] for k in entry.options})
  spec, dtype, conv_impl = model.spec(m), model.compute_dtype(m.dtype)[0], m.conv_impl

  def encode(params, x):
    return model.encode(params, x, spec, dtype, conv_impl)

  return lambda params, key, data: objective(params, sample(key, data), encode)


def make_data(config: ml_collections.ConfigDict, chars: loader.CharacterArray):
  """The device-side training data of `chars` (see `input_pipeline.make_data`)."""
  groups, bases = input_pipeline.character_groups(chars), input_pipeline.base_characters(chars)
  return input_pipeline.make_data(config.train, config.seed, chars.images, groups, bases)


def _format_eta(seconds: float) -> str:
  seconds = int(max(seconds, 0))
  return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


# The first steps after compilation are timed (one host sync each) until this many seconds or 3 steps.
ESTIMATE_AFTER_S = 15.0


def time_estimate(seconds_per_step: float, steps_per_epoch: int, steps_left: int, backend: str, cpu_hint: str) -> str:
  """One line: what an epoch and the rest of the run will take at the measured step time, and
  on a CPU backend where the rest takes over two hours, `cpu_hint` (`train.cpu_hint`; "": none)."""
  line = (
    f"measured {seconds_per_step:.2f} s/step on {backend}: an epoch ({steps_per_epoch} steps) takes about"
    f" {_format_eta(seconds_per_step * steps_per_epoch)}, the {steps_left} steps left about"
    f" {_format_eta(seconds_per_step * steps_left)} (h:mm:ss, training only)"
  )
  if backend == "cpu" and seconds_per_step * steps_left > 2 * 3600 and cpu_hint:
    line += f"; on a CPU, {cpu_hint}"
  return line


class Progress:
  """Prints step, loss, pairs/s and ETA every `log_every` steps; a tqdm bar on a terminal."""

  def __init__(self, start: int, total: int, batch_size: int):
    self.total, self.batch = total, batch_size
    self.last_step, self.last_time = start, time.time()
    self.bar = None
    if sys.stderr.isatty():
      import tqdm  # pylint: disable=g-import-not-at-top

      self.bar = tqdm.tqdm(total=total, initial=start, unit="step", dynamic_ncols=True)

  def reset(self, step: int) -> None:
    if self.bar is not None:
      self.bar.update(step - self.last_step)
    self.last_step, self.last_time = step, time.time()

  def update(self, step: int, loss: float) -> float:
    now = time.time()
    rate = (step - self.last_step) / max(now - self.last_time, 1e-9)
    eta = (self.total - step) / max(rate, 1e-9)
    if self.bar is not None:
      self.bar.update(step - self.last_step)
      self.bar.set_postfix(loss=f"{loss:.4f}", pairs_s=f"{rate * self.batch:.0f}")
    else:
      logging.info(
        "step %d/%d  loss %.4f  %.1f pairs/s  ETA %s", step, self.total, loss, rate * self.batch, _format_eta(eta)
      )
    self.last_step, self.last_time = step, now
    return rate * self.batch

  def close(self):
    if self.bar is not None:
      self.bar.close()


def validation_metrics(config, params, chars: loader.CharacterArray, scorer=None) -> dict[str, float]:
  """Validation by `validation.protocol` (`selection.PROTOCOLS`: val_one_shot with its 95% interval,
  val_one_shot_lo and _hi) and verification accuracy on balanced pairs, in percent. The scorer is the
  model's with `params` (with the eval's test-time augmentation when `validation.tta`); `scorer`
  lets tools validate variants of it."""
  from siamese_jax import evaluate, oneshot  # pylint: disable=g-import-not-at-top

  v = config.validation
  if scorer is None:
    scorer = oneshot.config_scorer(params, config.model)
    if v.tta:
      scorer = oneshot.tta_from_config(scorer, config.augment, config.eval)
  out = selection.PROTOCOLS[v.protocol](scorer, chars, v, config.eval.batch_size)
  a, b, y = evaluate.verification_pairs(chars, v.verification_pairs, v.seed)
  p, _ = evaluate.pair_probabilities(scorer, chars, a, b, config.eval.batch_size)
  return {**out, "val_verification": 100.0 * float(np.mean(evaluate.verification_correct(p, y)))}


def early_stopping(best_val: float, best_epoch: int, val: float, epoch: int, patience: int):
  """(best_val, best_epoch, improved, stop) after validation accuracy `val` at `epoch`."""
  improved = val > best_val
  if improved:
    best_val, best_epoch = val, epoch
  stop = bool(patience) and epoch - best_epoch >= patience
  return best_val, best_epoch, improved, stop


class Interrupted(Exception):
  """Training stopped on SIGTERM or SIGINT after writing a checkpoint."""

  def __init__(self, signum: int, step: int):
    super().__init__(
      f"stopped by {signal.Signals(signum).name} at step {step}; checkpoint saved."
      " Run the same command again to resume."
    )
    self.signum, self.step = signum, step


class _StopSignals:
  """Turns SIGTERM/SIGINT into a flag the loop checks after each step (main thread only)."""

  def __init__(self):
    self.signum, self._old = None, {}

  def __enter__(self):
    if threading.current_thread() is threading.main_thread():
      for s in (signal.SIGTERM, signal.SIGINT):
        self._old[s] = signal.signal(s, self._handle)
    return self

  def _handle(self, signum, frame):
    del frame
    if self.signum is not None:  # A second signal: give up at once.
      raise KeyboardInterrupt
    logging.warning("received %s: finishing the current step and writing a checkpoint", signal.Signals(signum).name)
    self.signum = signum

  def __exit__(self, *exc):
    for s, h in self._old.items():
      signal.signal(s, h)


# XLA:CPU (jax 0.10.2) computes non-finite gradients for some layer widths (docs/results.md, "Known XLA:CPU issues").
WIDTH_HINT = "; at step 1 on a CPU, see 'Widths on a CPU' in the README"


def _guard_finite(pending: list, step: int, mngr, cpu: bool = False) -> float:
  """Mean loss of the pending steps; raises naming the first step whose loss or gradient is not finite
  (with `WIDTH_HINT` when that is step 1 and `cpu`)."""
  losses = np.asarray(jnp.stack([p["loss"] for p in pending]))
  norms = np.asarray(jnp.stack([p["grad_norm"] for p in pending]))
  bad = np.flatnonzero(~(np.isfinite(losses) & np.isfinite(norms)))
  if len(bad):
    first = step - len(pending) + 1 + int(bad[0])
    raise FloatingPointError(
      f"non-finite loss ({losses[bad[0]]}) or gradient norm ({norms[bad[0]]}) at step {first};"
      f" the last good checkpoint (step {mngr.latest_step()}) is kept" + (WIDTH_HINT if first == 1 and cpu else "")
    )
  return float(losses.mean())


def train(
  config: ml_collections.ConfigDict, workdir: str, allow_config_change: bool = False, mesh=None, on_epoch=None
) -> tuple[TrainState, model.Params]:
  """Trains, resuming from the latest checkpoint in workdir.

  Returns the final state and the parameters to evaluate: the best by validation
  accuracy when validation is on, else the final ones. Raises `Interrupted` after
  checkpointing on SIGTERM/SIGINT, FloatingPointError on a non-finite loss.
  `on_epoch(epoch, metrics)`, if given, is called after each validated epoch once
  its checkpoint is complete (e.g. to report to a sweep engine).
  """
  mesh = mesh or sharding.make_mesh()
  config_check.check(config, mesh.size)
  _check_memory(config, mesh)
  bad = workdir_lib.unwritable(workdir)
  if bad:
    raise workdir_lib.WorkdirError(f"{bad}; train into a --workdir you can write to")
  # One training process per workdir (on a cluster, process 0 holds the lock for all).
  with workdir_lib.lock(workdir) if jax.process_index() == 0 else contextlib.nullcontext():
    return _train_locked(config, workdir, allow_config_change, mesh, on_epoch)


def device_memory(device) -> int | None:
  """Bytes of memory `device` has: its allocator's limit (GPU, TPU), else the host's RAM (CPU)."""
  stats = device.memory_stats() if hasattr(device, "memory_stats") else None
  if stats and stats.get("bytes_limit"):
    return int(stats["bytes_limit"])
  try:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
  except (ValueError, OSError):
    return None


def _check_memory(config, mesh) -> None:
  """Refuses a batch whose activations alone (`model.activation_bytes`) exceed a device's memory."""
  per_device = input_pipeline.images_per_step(config.train) // mesh.size
  need = model.activation_bytes(model.spec(config.model), per_device)
  have = device_memory(mesh.devices.flat[0])
  if have and need > have:
    key = "train.chars_per_batch" if config.train.pair_mode == "all_pairs" else "train.batch_size"
    raise config_check.ConfigError(
      f"config.{key}: a step needs at least {need / 2**30:,.1f} GiB for its activations, a device has"
      f" {have / 2**30:,.1f} GiB; lower it"
    )


def _train_locked(config, workdir, allow_config_change, mesh, on_epoch):
  """`train` once the workdir is locked: prepare, loop, then the best parameters and the curves."""
  run = _prepare(config, workdir, allow_config_change, mesh)
  try:
    state = _loop(run, on_epoch)
  finally:
    for m in (run.mngr, run.best_mngr):
      workdir_lib.wait(m, run.state)
  best = workdir_lib.restore_latest(run.best_mngr, {"params": state.params}) if run.val_chars is not None else None
  for m in (run.mngr, run.best_mngr):
    m.close()
  _plot(workdir)
  return state, (best["params"] if best is not None else state.params)


@dataclasses.dataclass
class _Run:
  """What the loop works with: the config and workdir, the data on the device, the checkpoint
  managers, the jitted step, the state to continue from and the steps of the run."""

  config: ml_collections.ConfigDict
  workdir: str
  data: dict
  val_chars: loader.CharacterArray | None
  mngr: object
  best_mngr: object
  step_fn: object
  state: TrainState
  steps_per_epoch: int
  start: int
  total: int


def _prepare(config, workdir, allow_config_change, mesh) -> _Run:
  """Records the config, loads the characters, builds or restores the state (dropping the metrics a
  lost run wrote past it) and the step; a run that stopped early stays stopped."""
  changed = workdir_lib.check_resume(config, workdir, allow_config_change)
  if changed:
    logging.warning("resuming with a changed config: %s", ", ".join(changed))
  if jax.process_index() == 0:
    workdir_lib.write_config(config, workdir)
    report = input_pipeline.data_report(config.data, config.model.image_size, config.model.channels)
    if report is not None:
      _check_same_folder(os.path.join(workdir, workdir_lib.DATA_FILE), report, allow_config_change)
      workdir_lib.write_json(os.path.join(workdir, workdir_lib.DATA_FILE), report)
  m = config.model
  chars = input_pipeline.training_characters(config.data, m.image_size, config.augment.class_rotations, m.channels)
  logging.info(
    "training on %d characters x %d drawers at %dx%d (%s); devices: %s",
    chars.num_characters,
    len(chars.drawers),
    chars.images.shape[2],
    chars.images.shape[3],
    ", ".join(chars.alphabet_names),
    sharding.describe(mesh),
  )
  val_chars = (
    input_pipeline.held_out_characters(config.validation, config.data, config.model.image_size, config.model.channels)
    if config.validation.enabled
    else None
  )
  data = sharding.replicate(make_data(config, chars), mesh)
  state, optimizer = create_train_state(jax.random.PRNGKey(config.seed), config)
  if config.train.init_from:
    state = state.replace(params=initial_params(config.train.init_from, config.model))
    state = state.replace(opt_state=optimizer.init(state.params))
    logging.info("starting from the parameters of %s", config.train.init_from)
  logging.info("model has %d parameters", model.num_params(state.params))
  dtype_note = model.compute_dtype(config.model.dtype)[1]
  if dtype_note:
    logging.warning(dtype_note)
  mngr = workdir_lib.manager(workdir, config.train.keep_checkpoints)
  best_mngr = workdir_lib.manager(workdir, 1, subdir=workdir_lib.BEST_DIR)
  restored = workdir_lib.restore_latest(mngr, state)
  if restored is not None:
    state = restored
    logging.info("resumed from step %d", int(state.step))
  if jax.process_index() == 0:  # records past the restored step belong to the lost run: drop them
    metrics_lib.truncate(workdir, int(state.step))
  spe = steps_per_epoch(config.train)
  start, total = int(state.step), spe * config.train.max_epochs
  t = config.train
  if val_chars is not None and t.patience and 0 < int(state.best_epoch) <= start // spe - t.patience:
    logging.info("this run stopped early at step %d (no gain since epoch %d)", start, int(state.best_epoch))
    total = start
  return _Run(
    config, workdir, data, val_chars, mngr, best_mngr, make_train_step(config, optimizer, mesh),
    sharding.replicate(state, mesh), spe, start, total,
  )  # fmt: skip


def _check_same_folder(path: str, report: dict, allow_change: bool) -> None:
  """Refuses to resume on a folder whose files changed since the workdir's data.json (its classes
  and split would differ), unless `allow_change`."""
  if not os.path.exists(path):
    return
  with open(path) as f:
    before = json.load(f).get("fingerprint")
  if before != report["fingerprint"] and not allow_change:
    raise workdir_lib.WorkdirError(
      f"{report['dir']} changed since this workdir started (fingerprint {before} -> {report['fingerprint']}):"
      " its classes and split would differ; train in a new --workdir, or pass --allow_config_change"
    )


class _Estimate:
  """Times the first steps after compilation (one host sync each) and logs what the run will take."""

  def __init__(self, run: _Run):
    self.run, self.first = run, None

  def after(self, step: int, out) -> None:
    if self.first is None and step != self.run.start + 1:
      return
    jax.block_until_ready(out["loss"])  # the first step's time is compilation: excluded
    if step == self.run.start + 1:
      self.first = (step, time.time())
      return
    n, dt = step - self.first[0], time.time() - self.first[1]
    if n >= 3 or dt >= ESTIMATE_AFTER_S or step == self.run.total:
      c = self.run.config
      left = self.run.total - step
      logging.info(time_estimate(dt / n, self.run.steps_per_epoch, left, jax.default_backend(), c.train.cpu_hint))
      self.first = False  # done

  @property
  def pending(self) -> bool:
    return self.first is not False


def _loop(run: _Run, on_epoch):
  """The training steps from `run.start` to `run.total`: logs and guards the loss at the logging
  interval, validates and checkpoints at the end of each epoch, stops on a signal or early."""
  config, spe, state = run.config, run.steps_per_epoch, run.state
  progress = Progress(run.start, run.total, input_pipeline.pairs_per_step(config.train))
  writer = metrics_lib.MetricsWriter(run.workdir, hparams=_flat(config))
  elapsed = metrics_lib.Elapsed(run.workdir)  # wall seconds of this run, carried over resumes
  estimate, pending, step = _Estimate(run), [], run.start
  try:
    with _StopSignals() as signals:
      while step < run.total:
        state, out = run.step_fn(state, run.data)
        run.state = state  # what the caller waits on if the loop stops
        step += 1
        pending.append(out)
        if estimate.pending:
          estimate.after(step, out)
          if step == run.start + 1:
            progress.reset(step)
        epoch_end = step % spe == 0
        save = step % config.train.checkpoint_every == 0 or step == run.total or epoch_end
        if step % config.train.log_every == 0 or save or signals.signum:
          loss = _guard_finite(pending, step, run.mngr, jax.default_backend() == "cpu")  # the only host sync
          pending = []
          lr = optim.current_learning_rate(config.train, step, spe, optim.layer_names(state.params))
          rate = progress.update(step, loss)
          writer.write(step, {"loss": loss, "pairs_per_s": rate, "learning_rate": lr, "elapsed_s": elapsed()})
        stop, val = False, None
        if epoch_end and run.val_chars is not None:
          state, stop, val = _end_of_epoch(
            config, state, step // spe, run.val_chars, writer, run.best_mngr, step, elapsed
          )
          run.state = state
          progress.reset(step)  # the next pairs/s is of training steps alone
        if save or stop or signals.signum:
          workdir_lib.save(run.mngr, step, state)
        if val is not None and on_epoch is not None:
          for m in (run.mngr, run.best_mngr):
            workdir_lib.wait(m, state)
          on_epoch(step // spe, {**val, "best_val_one_shot": float(state.best_val), "step": step})
        if signals.signum:
          raise Interrupted(signals.signum, step)
        if stop:
          break
  finally:
    progress.close()
    writer.close()
  return state


def _plot(workdir: str) -> None:
  """The run's curves: loss.png, validation.png, validation_vs_time.png."""
  metrics_lib.plot_curves(workdir, ("loss",), "loss.png", "training loss")
  metrics_lib.plot_curves(workdir, ("val_one_shot", "val_verification"), "validation.png", "validation accuracy (%)")
  metrics_lib.plot_curves(
    workdir, ("val_one_shot",), "validation_vs_time.png", "validation accuracy (%) against wall-clock", x="elapsed_s"
  )


def _end_of_epoch(config, state, epoch, val_chars, writer, best_mngr, step, elapsed):
  """Validates, updates the early-stopping record, saves the best parameters; returns (state, stop, metrics)."""
  t0 = time.time()
  kept = state.params
  val = validation_metrics(config, kept, val_chars)
  val["val_seconds"] = time.time() - t0  # the scorer compiles once per process (oneshot.model_scorer)
  val["elapsed_s"] = elapsed()
  best_val, best_epoch, improved, stop = early_stopping(
    float(state.best_val), int(state.best_epoch), val["val_one_shot"], epoch, config.train.patience
  )
  state = state.replace(best_val=jnp.float32(best_val), best_epoch=jnp.int32(best_epoch))
  writer.write(step, {**val, "epoch": epoch})
  logging.info(
    "epoch %d: validation (%s) %.2f%%, verification %.1f%% (best %.2f%% at epoch %d)",
    epoch,
    config.validation.protocol,
    val["val_one_shot"],
    val["val_verification"],
    best_val,
    best_epoch,
  )
  if improved:
    workdir_lib.save(best_mngr, step, {"params": kept})
  if stop:
    logging.info("early stopping: no improvement for %d epochs", config.train.patience)
  return state, stop, val


def _flat(config) -> dict:
  """Config as flat {"a.b": value} for hparams."""
  return workdir_lib.flat_dict(config.to_dict())


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str, allow_config_change: bool = False) -> dict:
  """Trains, then evaluates the best (or final) parameters; returns the evaluation results."""
  _, params = train(config, workdir, allow_config_change)
  from siamese_jax import evaluate  # pylint: disable=g-import-not-at-top

  return evaluate.evaluate_workdir(config, workdir, params=params)
