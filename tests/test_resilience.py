"""Checkpoints, exact resume, signals, kills, non-finite guard, config record, sharding."""

import json
import os
import random
import signal
import subprocess
import time
import types

from absl import logging as absl_logging
from conftest import ROOT, main_cmd, smoke_config
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import koch
from siamese_jax import metrics, train, workdir


def leaves(tree):
  return [np.asarray(x) for x in jax.tree_util.tree_leaves(tree)]


def assert_bitwise_equal(a, b):
  for x, y in zip(leaves(a), leaves(b)):
    np.testing.assert_array_equal(x, y)


@pytest.fixture(scope="module")
def reference(tiny_omniglot, tmp_path_factory):
  """Final state of an uninterrupted smoke run (30 steps)."""
  state, _ = train.train(smoke_config(tiny_omniglot), str(tmp_path_factory.mktemp("ref")))
  return state


def _sigterm_at(step_at, monkeypatch):
  real = train.make_train_step

  def make(config, optimizer, mesh=None):
    fn = real(config, optimizer, mesh)

    def step(state, data):
      state, out = fn(state, data)
      if int(state.step) == step_at:
        os.kill(os.getpid(), signal.SIGTERM)
      return state, out

    return step

  monkeypatch.setattr(train, "make_train_step", make)


@pytest.mark.slow
def test_sigterm_checkpoints_and_resume_is_bitwise_exact(tiny_omniglot, tmp_path, monkeypatch, reference):
  cfg = smoke_config(tiny_omniglot)
  _sigterm_at(12, monkeypatch)
  with pytest.raises(train.Interrupted, match="SIGTERM at step 12"):
    train.train(cfg, str(tmp_path))
  mngr = workdir.manager(str(tmp_path), read_only=True)
  assert mngr.latest_step() == 12  # Saved at the signal, off the checkpoint_every grid.
  monkeypatch.undo()
  state, _ = train.train(cfg, str(tmp_path))
  assert int(state.step) == 30
  assert_bitwise_equal(state.params, reference.params)  # Bitwise, not only within tolerance.
  assert_bitwise_equal(state.opt_state, reference.opt_state)
  rows = [json.loads(line) for line in open(tmp_path / "metrics.jsonl")]
  assert {"loss", "pairs_per_s", "learning_rate"} <= set(rows[-1])
  assert any(f.startswith("events.out.tfevents") for f in os.listdir(tmp_path))


def cpu_path_config(tiny_omniglot):
  """The `:cpu` preset's path at toy size: all_pairs with hard negatives, rotated classes, per-alphabet
  draws, group norm."""
  cfg = smoke_config(tiny_omniglot, pair_mode="all_pairs", chars_per_batch=4, drawers_per_char=2, chars_per_alphabet=2)
  cfg.train.hard_negatives = 0.5
  cfg.augment.class_rotations = True
  cfg.model.norm_groups = 4
  cpu = koch.get_config("cpu")  # its split of the validation alphabets: five trained on, five validating
  cfg.data.extra_train_alphabets = cpu.data.extra_train_alphabets
  cfg.validation.alphabets = cpu.validation.alphabets
  return cfg


@pytest.mark.slow
def test_cpu_path_resume_after_a_stop_is_bitwise_exact(tiny_omniglot, tmp_path, monkeypatch):
  cfg = cpu_path_config(tiny_omniglot)
  whole, _ = train.train(cfg, str(tmp_path / "whole"))
  _sigterm_at(12, monkeypatch)
  with pytest.raises(train.Interrupted):
    train.train(cfg, str(tmp_path / "cut"))
  monkeypatch.undo()
  resumed, _ = train.train(cfg, str(tmp_path / "cut"))
  assert int(resumed.step) == 30
  assert_bitwise_equal(resumed.params, whole.params)
  assert_bitwise_equal(resumed.opt_state, whole.opt_state)


def test_resume_with_changed_config_is_refused(tiny_omniglot, tmp_path):
  cfg = smoke_config(tiny_omniglot, max_epochs=1)
  train.train(cfg, str(tmp_path))
  changed = smoke_config(tiny_omniglot, max_epochs=1, learning_rate=0.1)
  with pytest.raises(workdir.WorkdirError, match=r"different config \(train.learning_rate: 0.003 -> 0.1\)"):
    train.train(changed, str(tmp_path))
  train.train(changed, str(tmp_path), allow_config_change=True)  # Explicit override.
  same = smoke_config(tiny_omniglot, max_epochs=1, learning_rate=0.1)
  same.eval.num_tasks = 7  # Evaluation settings may change freely.
  workdir.check_resume(same, str(tmp_path), allow_change=False)
  recorded = json.loads((tmp_path / workdir.CONFIG_FILE).read_text())
  del recorded["train"]["weight_decay"]  # a workdir started before a key was added: its default holds
  recorded["model"]["members"] = 1  # a retired key at its neutral value is ignored
  (tmp_path / workdir.CONFIG_FILE).write_text(json.dumps(recorded))
  workdir.check_resume(same, str(tmp_path), allow_change=False)
  same.train.weight_decay = 0.5
  with pytest.raises(workdir.WorkdirError, match=r"train.weight_decay: 0.0 -> 0.5"):
    workdir.check_resume(same, str(tmp_path), allow_change=False)
  same.train.weight_decay = 0.0
  recorded["model"]["members"] = 2  # ... and refused at any other
  (tmp_path / workdir.CONFIG_FILE).write_text(json.dumps(recorded))
  with pytest.raises(workdir.WorkdirError, match=r"model.members=2 is no longer supported"):
    workdir.check_resume(same, str(tmp_path), allow_change=False)
  del recorded["model"]["members"]
  (tmp_path / workdir.CONFIG_FILE).write_text(json.dumps(recorded))
  os.remove(tmp_path / workdir.CONFIG_FILE)  # checkpoints whose config is unknown: refused as well
  with pytest.raises(workdir.WorkdirError, match="holds checkpoints but no config.json"):
    train.train(same, str(tmp_path))
  workdir.check_resume(same, str(tmp_path), allow_change=True)


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(tiny_omniglot, tmp_path, monkeypatch):
  real = train.make_train_step

  def make(config, optimizer, mesh=None):
    fn = real(config, optimizer, mesh)

    def step(state, data):
      new, out = fn(state, data)
      if int(new.step) >= 8:  # Poison the parameters from step 8 on.
        new = new.replace(params=jax.tree_util.tree_map(lambda x: x * jnp.nan, new.params))
        out = {**out, "loss": jnp.float32(jnp.nan)}
      return new, out

    return step

  monkeypatch.setattr(train, "make_train_step", make)
  with pytest.raises(FloatingPointError, match=r"at step 8; the last good checkpoint \(step 5\) is kept$"):
    train.train(smoke_config(tiny_omniglot), str(tmp_path))
  # Non-finite from the first step on a CPU: the message points to the XLA:CPU width note.
  first_nan = [{"loss": jnp.float32(jnp.nan), "grad_norm": jnp.float32(jnp.nan)}]
  none_saved = types.SimpleNamespace(latest_step=lambda: None)
  with pytest.raises(FloatingPointError, match=r"at step 1; .* is kept; at step 1 on a CPU, see 'Widths on a CPU'"):
    train._guard_finite(first_nan, 1, none_saved, cpu=True)
  mngr = workdir.manager(str(tmp_path), read_only=True)
  assert mngr.all_steps() == [5]
  assert all(np.isfinite(x).all() for x in leaves(workdir.load_params(str(tmp_path), koch.get_config("smoke").model)))


@pytest.mark.slow
def test_sigkill_at_random_points_then_resume(tiny_omniglot, tmp_path, reference):
  manual, _, _ = tiny_omniglot
  env = dict(os.environ, OMNIGLOT_DIR=manual, TFDS_DATA_DIR=str(tmp_path / "tfds"))
  wd = tmp_path / "run"
  rng = random.Random(0)
  for _ in range(3):
    proc = subprocess.Popen(main_cmd(wd), cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
    for line in proc.stderr:  # Wait until training runs, then kill at a random moment.
      if " step " in line or "resumed" in line:
        break
    time.sleep(rng.uniform(0.0, 0.6))
    proc.kill()
    proc.wait()
  proc = subprocess.run(main_cmd(wd), cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert "resumed from step" in proc.stderr
  assert_bitwise_equal(workdir.load_params(str(wd), koch.get_config("smoke").model), reference.params)
  steps = [r["step"] for r in metrics.read_metrics(str(wd)) if "loss" in r]
  assert steps == list(range(1, 31))  # one record per step, whatever the kills cut off


@pytest.mark.slow
def test_sigterm_from_outside_exits_cleanly(tiny_omniglot, tmp_path):
  manual, _, _ = tiny_omniglot
  env = dict(os.environ, OMNIGLOT_DIR=manual, TFDS_DATA_DIR=str(tmp_path / "tfds"))
  cmd = main_cmd(tmp_path / "run", "--config.train.max_epochs=200")
  proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
  for line in proc.stderr:
    if " step " in line:
      break
  proc.send_signal(signal.SIGTERM)
  err = proc.stderr.read()
  assert proc.wait(timeout=120) == 128 + signal.SIGTERM
  assert "checkpoint saved" in err and "Traceback" not in err


def _damage(step_dir, how: str) -> None:
  """Truncates one data file of a checkpoint to half, or zeroes its _METADATA."""
  if how == "truncate":
    data = step_dir / "default" / "ocdbt.process_0" / "d"
    victim = max(data.iterdir(), key=lambda p: p.stat().st_size)
    victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 2])
  else:
    meta = step_dir / "default" / "_METADATA"
    meta.write_bytes(b"\0" * meta.stat().st_size)


@pytest.mark.slow
def test_damaged_checkpoints_are_set_aside_and_the_run_resumes_bitwise(tiny_omniglot, tmp_path, monkeypatch, reference):
  cfg = smoke_config(tiny_omniglot)
  _sigterm_at(12, monkeypatch)
  with pytest.raises(train.Interrupted):
    train.train(cfg, str(tmp_path))
  monkeypatch.undo()
  ckpt = tmp_path / workdir.CHECKPOINT_DIR
  assert sorted(int(p.name) for p in ckpt.iterdir() if p.name.isdigit()) == [5, 10, 12]
  _damage(ckpt / "12", "truncate")
  _damage(ckpt / "10", "zero")
  warnings = []
  monkeypatch.setattr(absl_logging, "warning", lambda msg, *a: warnings.append(msg % a))
  state, _ = train.train(cfg, str(tmp_path))  # resumes from step 5, the newest readable one
  monkeypatch.undo()
  assert int(state.step) == 30
  assert_bitwise_equal(state.params, reference.params)
  assert_bitwise_equal(state.opt_state, reference.opt_state)
  assert (ckpt / "12.damaged").is_dir() and (ckpt / "10.damaged").is_dir()  # set aside, not deleted
  skipped = [w for w in warnings if w.startswith("skipping damaged checkpoint")]
  assert len(skipped) == 2 and "12" in skipped[0] and "10" in skipped[1]
  steps = [json.loads(line)["step"] for line in open(tmp_path / "metrics.jsonl")]
  assert steps == sorted(steps)  # the records of the lost steps were dropped before they were run again
  # None readable: one line that says so.
  for p in ckpt.iterdir():
    if p.name.isdigit():
      _damage(p, "zero")
  with pytest.raises(workdir.WorkdirError, match="no checkpoint in .* can be read"):
    workdir.restore_latest(workdir.manager(str(tmp_path), 3), state)
