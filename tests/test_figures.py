"""Figures: the evaluation's plots are drawn from an eval.json and written as PNGs."""

import json
import os

from PIL import Image

from siamese_jax import figures


def test_evaluation_figures_are_written(smoke_workdir, tmp_path):
  results = json.load(open(os.path.join(smoke_workdir, "eval.json")))
  path = figures.plot_accuracy_vs_n(results["one_shot"], str(tmp_path / "acc.png"))
  assert Image.open(path).size[0] > 300
  fig = figures.plot_accuracy_by_run(results, str(tmp_path / "runs.png"))
  assert fig is not None and (tmp_path / "runs.png").stat().st_size > 0
  for name in ("accuracy_vs_n.png", "test_pairs.png"):  # what the evaluation itself wrote
    assert Image.open(os.path.join(smoke_workdir, name)).size[0] > 100
