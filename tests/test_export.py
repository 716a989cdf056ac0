"""Export: a trained workdir becomes a self-contained model folder that loads and scores the same."""

import json
import os
import subprocess
import sys

from conftest import character_image
import numpy as np
import pytest

import siamese_jax


@pytest.mark.slow
def test_exported_folder_loads_and_scores_as_the_workdir(smoke_workdir, tmp_path):
  out = tmp_path / "model"
  proc = subprocess.run(
    [sys.executable, "-m", "siamese_jax.export", f"--workdir={smoke_workdir}", f"--out={out}"],
    capture_output=True,
    text=True,
  )
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert sorted(os.listdir(out)) == ["config.json", "eval.json", "params.npz"]
  config = json.loads((out / "config.json").read_text())
  assert config["data"]["data_dir"] is None and config["data"]["manual_dir"] is None  # no paths of this machine
  a = [character_image(1, d, 64) for d in (1, 2, 3)]
  b = [character_image(1, 5, 64), character_image(2, 2, 64), character_image(3, 1, 64)]
  here, there = siamese_jax.load(smoke_workdir), siamese_jax.load(str(out))
  np.testing.assert_allclose(there.similarity(a, b), here.similarity(a, b), rtol=1e-6)
  assert there.threshold == here.threshold
  bad = subprocess.run(
    [sys.executable, "-m", "siamese_jax.export", f"--workdir={tmp_path / 'nothing'}", f"--out={tmp_path / 'x'}"],
    capture_output=True,
    text=True,
  )
  assert bad.returncode == 2 and bad.stderr.startswith("error: ") and bad.stderr.count("\n") == 1


def test_a_failed_export_leaves_the_previous_folder_whole(smoke_workdir, tmp_path, monkeypatch):
  from siamese_jax import workdir

  out = tmp_path / "model"
  workdir.export(smoke_workdir, str(out))
  before = {p.name: p.read_bytes() for p in out.iterdir()}

  def killed(*args, **kwargs):
    raise KeyboardInterrupt  # killed while writing the new parameters

  monkeypatch.setattr(np, "savez", killed)
  with pytest.raises(KeyboardInterrupt):
    workdir.export(smoke_workdir, str(out))
  assert {p.name: p.read_bytes() for p in out.iterdir()} == before
  assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no half-written folder beside it
