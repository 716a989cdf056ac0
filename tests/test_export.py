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


def _onnx_similarity(folder, a, b):
  import onnxruntime as ort

  enc = ort.InferenceSession(str(folder / "encoder.onnx"))
  head = ort.InferenceSession(str(folder / "head.onnx"))
  e_a, e_b = (enc.run(None, {"image": x})[0] for x in (a, b))
  return head.run(["probability"], {"embedding_a": e_a, "embedding_b": e_b})[0]


def test_onnx_scores_as_jax_with_and_without_group_norm(tmp_path):
  """The shipped model (group norm) and Koch-style RGB networks (conv bias, four convs) with each head
  in ONNX Runtime: similarities within 1e-4 of JAX's on the same prepared images."""
  import jax

  from configs import koch
  from siamese_jax import api, model, onnx_export

  shipped = api.load("pretrained", tta=False)
  onnx_export.export_workdir("pretrained", str(tmp_path / "shipped"))
  nets = [(shipped, tmp_path / "shipped")]
  for head in model.HEADS:  # RGB Koch-style networks with each head
    smoke = koch.get_config("smoke")
    smoke.model.channels, smoke.model.head = 3, head
    other = api.Siamese(smoke, model.init(jax.random.PRNGKey(3), smoke.model), tta=False)
    onnx_export.write(other.params, model.spec(smoke.model), str(tmp_path / head))
    nets.append((other, tmp_path / head))
  rng = np.random.default_rng(0)
  for net, folder in nets:
    a = net.prepare([character_image(c, 0) for c in range(8)])
    b = net.prepare([rng.integers(0, 256, (40, 30, 3), np.uint8) for _ in range(8)])
    diff = np.abs(_onnx_similarity(folder, a, b) - net.similarity(a, b)).max()
    assert diff <= 1e-4, diff
  info = json.loads((tmp_path / "shipped" / "model.json").read_text())
  assert info["image_size"] == 28 and info["embed_dim"] == 512


def test_model_card_onnx_lines_run_without_jax(tmp_path):
  """The model card's lines that score a pair with onnxruntime alone, in a process where JAX cannot load."""
  from conftest import ROOT
  from PIL import Image

  from siamese_jax import api, onnx_export

  card = open(os.path.join(ROOT, "docs", "MODEL_CARD.md")).read()
  code = card.split("<!-- onnx -->", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
  onnx_export.export_workdir("pretrained", str(tmp_path / "onnx"))
  for name, (c, d) in (("a.png", (4, 0)), ("b.png", (4, 1))):
    Image.fromarray(character_image(c, d)).save(tmp_path / name)
  proc = subprocess.run(
    [sys.executable, "-c", 'import sys; sys.modules["jax"] = None\n' + code],
    cwd=tmp_path,
    capture_output=True,
    text=True,
  )
  assert proc.returncode == 0, proc.stderr[-2000:]
  jax_p = api.load("pretrained", tta=False).similarity([str(tmp_path / "a.png")], [str(tmp_path / "b.png")])[0]
  assert abs(float(proc.stdout.split()[-1]) - jax_p) < 0.02  # PIL's resize against the package's
