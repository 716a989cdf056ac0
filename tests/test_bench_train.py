"""The speed benchmark: the PyTorch reference computes what siamese_jax computes; the
timing harness runs both frameworks in child processes and tabulates them."""

import time

import jax
import numpy as np
import pytest

from configs import koch
from siamese_jax import losses, model
from siamese_jax.tools import bench_train, timing

torch = pytest.importorskip("torch", reason="PyTorch is the optional `bench` extra")
from siamese_jax.tools import torch_reference as tr  # noqa: E402 - only once torch is known to be there


@pytest.mark.parametrize("preset", ["smoke", "cpu"])
def test_torch_reference_matches_siamese_jax(preset):
  cfg = koch.get_config(preset).model
  size = cfg.image_size
  params = model.init(jax.random.PRNGKey(0), cfg)
  rng = np.random.default_rng(0)
  x_a, x_b = rng.random((6, size, size, 1), np.float32), rng.random((6, size, size, 1), np.float32)
  labels = np.array([0, 1, 0, 1, 1, 0], np.float32)

  encode = lambda p, x: model.encode(p, x, model.spec(cfg))
  loss_fn = lambda p: losses.pair_loss(p, x_a, x_b, labels, encode)
  loss, grads = jax.value_and_grad(loss_fn)(params)

  net = tr.TorchSiamese(jax.tree_util.tree_map(np.asarray, params))
  logits = net(tr.nchw(x_a), tr.nchw(x_b))
  np.testing.assert_allclose(
    logits.detach().numpy(),
    model.pair_logits(params, encode(params, x_a), encode(params, x_b)),
    rtol=1e-4,
    atol=1e-5,
  )
  t_loss = tr.clamped_bce(logits, torch.from_numpy(labels))
  t_loss.backward()
  np.testing.assert_allclose(t_loss.item(), float(loss), rtol=1e-5)
  np.testing.assert_allclose(
    net.convs[0].weight.grad.numpy().transpose(2, 3, 1, 0), grads["conv0"]["w"], rtol=1e-3, atol=1e-6
  )
  np.testing.assert_allclose(net.head.weight.grad.numpy().T, grads["head"]["w"], rtol=1e-3, atol=1e-7)
  assert ("g" in params["conv0"]) == (cfg.norm_groups > 0)
  if cfg.norm_groups:  # the cpu preset's group norm: its gain's gradient too
    np.testing.assert_allclose(net.norms[1].weight.grad.numpy(), grads["conv1"]["g"].reshape(-1), rtol=1e-3, atol=1e-6)
  assert float(losses.EPS) == tr.EPS


def test_forward_flops_of_the_koch_network():
  # conv 96^2*10^2*64, 42^2*7^2*64*128, 18^2*4^2*128^2, 6^2*4^2*128*256, dense 6^2*256*4096, head 4096.
  macs = 96**2 * 100 * 64 + 42**2 * 49 * 64 * 128 + 18**2 * 16 * 128**2 + 36 * 16 * 128 * 256 + 36 * 256 * 4096 + 4096
  assert bench_train.forward_flops(koch.get_config().model) == 2 * macs


@pytest.mark.slow
@pytest.mark.parametrize("framework", ["jax", "torch"])
def test_measure_runs_in_a_child_and_reports(framework):
  cfg = bench_train.bench_config("smoke", "float32", 4)
  params_np = bench_train.numpy_params(cfg)
  spec = {"preset": "smoke", "dtype": "float32", "batch": 4, "conv_impl": "auto", "repeats": 2, "steps": 1}
  r = bench_train.measure(framework, spec, params_np)
  assert "error" not in r, r.get("error")
  assert len(r["step_s"]) == 2 and r["pairs_per_s"] == pytest.approx(4 / r["median_step_s"])
  assert r["peak_rss_bytes"] > 50 * 2**20 and 0 < r["setup_rss_bytes"] <= r["peak_rss_bytes"]
  if framework == "jax":
    assert r["xla_temp_bytes"] > 0


def test_train_table_ratio_against_pytorch():
  base = {"preset": "koch", "dtype": "float32", "image_size_used": 105, "fwd_flops": 1e9, "peak_rss_bytes": 2**30}
  rows = [
    {
      **base,
      "framework": "jax",
      "conv_impl": "auto",
      "pairs_per_s": 20.0,
      "xla_temp_bytes": 2**20,
      "setup_rss_bytes": 2**29,
    },
    {**base, "framework": "torch", "conv_impl": "n/a", "torch_mode": "eager", "pairs_per_s": 8.0},
    {**base, "framework": "torch", "conv_impl": "n/a", "torch_mode": "compile", "pairs_per_s": 10.0},
    {
      **base,
      "dtype": "bfloat16",
      "framework": "jax",
      "conv_impl": "auto",
      "pairs_per_s": 20.0,
      "computed_in": "float32",
    },
  ]
  table = bench_train.train_table(rows).splitlines()
  # 40 images/s x 3 x 1 GFLOP; 20 / best PyTorch (10); peak 1024 MiB of which 512 after setup
  assert "| 20.0 | 40.0 | 120 | 2.00 | 1024 | 512 | 1 |" in table[2]
  assert "PyTorch eager" in table[3] and "PyTorch torch.compile (inductor)" in table[4]
  assert "(computes in float32: `model.compute_dtype`)" in table[5] and "| n/a |" in table[5]  # no bfloat16 PyTorch row


def test_timing_blocks_and_rounds():
  calls = []
  step = lambda: calls.append(time.sleep(0.01))
  times = timing.block_timings(step, repeats=2, steps=1, sync=lambda r: r, min_block_s=0.05)
  assert len(times) == 2 and len(calls) >= 3 + 2 * 4  # warm-up, calibration, blocks of >= 4 steps
  rows = [{"batch": 8, "median_step_s": t, "peak_rss_bytes": 1} for t in (0.1, 0.4, 0.2)]
  merged = bench_train._merge_rounds(rows)
  assert merged["median_step_s"] == 0.2 and merged["pairs_per_s"] == 40 and merged["round_step_s"] == [0.1, 0.4, 0.2]
  assert "error" in bench_train._merge_rounds([rows[0], {"batch": 8, "error": "did not finish"}])


@pytest.mark.slow
def test_eval_comparison_naive_and_embed_once_agree():
  from siamese_jax import lake_runs
  from siamese_jax.omniglot.loader import CharacterArray

  cfg = koch.get_config("smoke")
  cfg.model.init = "he"  # scores far enough apart that round-off decides no argmax
  size = cfg.model.image_size
  params = model.init(jax.random.PRNGKey(0), cfg.model)
  rng = np.random.default_rng(0)
  chars = CharacterArray(
    rng.integers(0, 256, (24, 4, size, size, 1), dtype=np.uint8), np.arange(24), np.repeat([0, 1], 12), np.arange(1, 5)
  )
  spec = model.spec(cfg.model)
  row = bench_train.compare_sweep(params, spec, chars, size, n_way=5, num_tasks=60, batch_size=64)
  assert row["same_accuracy"] is True
  assert row["naive_passes"] == 2 * 60 * 5 and row["embed_once_passes"] <= chars.images.shape[0] * 4

  runs = [
    lake_runs.Run(
      f"run{i:02d}",
      [],
      [],
      rng.integers(0, 256, (20, 105, 105, 1), dtype=np.uint8),
      rng.integers(0, 256, (20, 105, 105, 1), dtype=np.uint8),
      rng.permutation(20),
    )
    for i in range(2)
  ]
  row = bench_train.compare_lake(params, spec, runs, size, 64)
  assert row["same_accuracy"] is True
  assert row["naive_passes"] == 2 * 2 * 20 * 20 and row["embed_once_passes"] == 2 * 40
