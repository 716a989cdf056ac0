"""Data parallelism: the sharded step equals the single-device step."""

import os
import subprocess
import sys
import textwrap

from conftest import ROOT
import pytest

SHARDED_SCRIPT = textwrap.dedent("""
    import os
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"
    import jax, numpy as np
    from configs import koch
    from siamese_jax import input_pipeline, sharding, train
    assert jax.device_count() == 4
    for mode in ("independent", "all_pairs"):
      cfg = koch.get_config("smoke")
      cfg.train.pair_mode = mode
      # SGD is linear in the gradient; Adam would blow float noise in near-zero gradients up to +-lr.
      cfg.train.optimizer = "koch_sgd"
      images = np.random.default_rng(0).integers(0, 256, (40, 12, 32, 32, 1)).astype(np.uint8)
      out = {}
      for n in (1, 4):
        mesh = sharding.make_mesh(jax.devices()[:n])
        state, opt = train.create_train_state(jax.random.PRNGKey(0), cfg)
        state = sharding.replicate(state, mesh)
        data = sharding.replicate(input_pipeline.make_data(cfg.train, cfg.seed, images), mesh)
        step = train.make_train_step(cfg, opt, mesh)
        if n == 4:  # Really data parallel: the compiled step all-reduces the gradients.
          assert "all-reduce" in step.lower(state, data).compile().as_text()
        for _ in range(3):
          state, m = step(state, data)
        out[n] = (float(m["loss"]), jax.tree_util.tree_leaves(state.params))
      diff = max(float(np.abs(np.asarray(a) - np.asarray(b)).max()) for a, b in zip(out[1][1], out[4][1]))
      print(mode, out[1][0], out[4][0], diff)
""")


@pytest.mark.slow
def test_sharded_step_matches_single_device(tmp_path):
  script = tmp_path / "sharded.py"
  script.write_text(SHARDED_SCRIPT)
  env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
  env["PYTHONPATH"] = ROOT  # the repository's configs/
  proc = subprocess.run([sys.executable, str(script)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
  assert proc.returncode == 0, proc.stderr[-3000:]
  lines = [line.split() for line in proc.stdout.strip().splitlines()]
  assert [line[0] for line in lines] == ["independent", "all_pairs"]
  for _, loss1, loss4, diff in lines:
    assert abs(float(loss1) - float(loss4)) < 1e-5  # Float tolerance: reductions reorder.
    assert float(diff) < 1e-5
