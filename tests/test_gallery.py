"""Identification against a gallery: the right class for other drawings, unknown below the threshold,
one file that only the network that embedded it can read, and the CLI."""

import os
import subprocess
import sys

from conftest import ROOT, character_image
import numpy as np
import pytest

from siamese_jax import api
from siamese_jax.gallery import UNKNOWN, Gallery


@pytest.fixture(scope="module")
def net():
  return api.load("pretrained", tta=False)


def _glyphs(drawer, classes=10):
  return {f"c{c}": character_image(c, drawer) for c in range(classes)}


def test_other_drawings_of_enrolled_classes_are_identified(net):
  gallery = Gallery.enroll(net, {name: [img] for name, img in _glyphs(0).items()})
  results = gallery.identify(list(_glyphs(1).values()), k=3)
  predicted = [r["top"][0][0] for r in results]
  assert sum(p == f"c{c}" for c, p in enumerate(predicted)) >= 9, predicted
  assert all(len(r["top"]) == 3 and r["top"][0][1] >= r["top"][1][1] >= r["top"][2][1] for r in results)


def test_class_scores_are_the_mean_logit_over_enrolled_images(net):
  glyphs = [_glyphs(d, 3) for d in range(3)]
  gallery = Gallery.enroll(net, {n: [glyphs[0][n], glyphs[1][n]] for n in glyphs[0]})
  q = net.scored_embeddings(api.prepare_images(list(glyphs[2].values()), net.image_size))
  logits = net.pair_scores(q, gallery.embeddings)
  np.testing.assert_allclose(gallery.class_scores(q), logits.reshape(3, 3, 2).mean(-1), rtol=1e-5, atol=1e-5)
  one = np.asarray(net._logits(net.params, q[:1], gallery.embeddings[2:3]))[0]
  assert abs(logits[0, 2] - one) < 1e-4


def test_unknown_below_the_threshold(net):
  gallery = Gallery.enroll(net, _glyphs(0, 3))
  blank = np.full((105, 105), 255, np.uint8)
  assert gallery.identify([blank])[0]["prediction"] == UNKNOWN
  net_high = api.Siamese(net.config, net.params, tta=False)
  net_high.threshold = 1.0  # cached property: an instance attribute overrides it
  assert (
    Gallery(net_high, gallery.names, gallery.labels, gallery.embeddings).identify([blank])[0]["prediction"] == UNKNOWN
  )


def test_saved_gallery_round_trip_and_refusal(net, tmp_path):
  gallery = Gallery.enroll(net, _glyphs(0, 4))
  gallery.save(str(tmp_path / "g.npz"))
  back = Gallery.load(str(tmp_path / "g.npz"), net)
  assert back.names == gallery.names and np.array_equal(back.embeddings, gallery.embeddings)
  with_tta = api.load("pretrained")
  with pytest.raises(ValueError, match="embedded by another network"):
    Gallery.load(str(tmp_path / "g.npz"), with_tta)
  with pytest.raises(ValueError, match="no images for b"):
    Gallery.enroll(net, {"a": [character_image(0, 0)], "b": []})


@pytest.mark.slow
def test_identify_cli_prints_a_table(tmp_path):
  from PIL import Image

  for c in range(4):
    os.makedirs(tmp_path / "g" / f"c{c}")
    Image.fromarray(character_image(c, 0)).save(tmp_path / "g" / f"c{c}" / "0.png")
  Image.fromarray(character_image(2, 1)).save(tmp_path / "q.png")
  cmd = [sys.executable, "-m", "siamese_jax.identify", "--pretrained", f"--gallery={tmp_path / 'g'}"]
  proc = subprocess.run(
    [*cmd, f"--save={tmp_path / 'g.npz'}", str(tmp_path / "q.png")], cwd=ROOT, capture_output=True, text=True
  )
  assert proc.returncode == 0, proc.stderr[-2000:]
  row = proc.stdout.splitlines()[1].split()
  assert row[:2] == [str(tmp_path / "q.png"), "c2"], proc.stdout
  assert os.path.exists(tmp_path / "g.npz")
  proc = subprocess.run([*cmd[:-1], "--gallery=/nonexistent", "x.png"], cwd=ROOT, capture_output=True, text=True)
  assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1].startswith(
    "error: gallery /nonexistent is not a folder"
  )
