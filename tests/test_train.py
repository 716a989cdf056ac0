"""Train step overfits a fixed batch; main runs end to end on the smoke preset."""

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import optax

from configs import koch
from conftest import ROOT
from siamese_jax import model, train


def test_repeated_step_on_fixed_batch_lowers_loss():
  cfg = koch.get_config("smoke")
  params = model.init(jax.random.PRNGKey(0), cfg.model)
  opt = optax.adam(3e-3)
  opt_state = opt.init(params)
  k1, k2 = jax.random.split(jax.random.PRNGKey(1))
  x_a = jax.random.uniform(k1, (16, 32, 32, 1))
  x_b = jnp.where(jnp.arange(16)[:, None, None, None] % 2 == 0, x_a, jax.random.uniform(k2, (16, 32, 32, 1)))
  labels = (jnp.arange(16) % 2 == 0).astype(jnp.float32)

  @jax.jit
  def step(params, opt_state):
    loss, grads = jax.value_and_grad(train.pair_loss)(params, x_a, x_b, labels)
    updates, opt_state = opt.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss

  losses = []
  for _ in range(80):
    params, opt_state, loss = step(params, opt_state)
    losses.append(float(loss))
  assert losses[-1] < 0.5 * losses[0], losses[::10]


def test_train_step_samples_on_device_and_learns(tiny_omniglot):
  _, data_dir, _ = tiny_omniglot
  cfg = koch.get_config("smoke")
  cfg.data.data_dir = data_dir
  chars = train.load_train_images(cfg)
  opt = train.make_optimizer(cfg.train)
  state = train.create_train_state(jax.random.PRNGKey(0), cfg, opt)
  step = train.make_train_step(opt, 32)
  images = jax.device_put(chars.images)
  losses = []
  for _ in range(150):
    state, out = step(state, images)
    losses.append(out["loss"])
  losses = jnp.stack(losses)
  assert int(state.step) == 150
  assert float(losses[-30:].mean()) < float(losses[:30].mean())


def test_main_smoke_end_to_end(tiny_omniglot, tmp_path):
  manual, _, _ = tiny_omniglot
  workdir = tmp_path / "run"
  env = dict(os.environ, OMNIGLOT_DIR=manual, TFDS_DATA_DIR=str(tmp_path / "tfds"))
  cmd = [sys.executable, "-m", "siamese_jax.main", "--config=configs/koch.py:smoke",
         f"--workdir={workdir}", "--config.train.num_steps=20"]
  proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert "step 20/20" in proc.stderr
  for name in ("config.json", "metrics.jsonl", "loss.png", "checkpoints"):
    assert (workdir / name).exists(), name
  rows = [json.loads(line) for line in open(workdir / "metrics.jsonl")]
  assert [r["step"] for r in rows] == [10, 20]
  assert json.load(open(workdir / "config.json"))["train"]["num_steps"] == 20
