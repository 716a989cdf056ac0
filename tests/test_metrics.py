"""Metrics: one record per step, truncation after a resume, wall-clock carried over, curves."""

import json

from siamese_jax import metrics


def test_records_truncate_and_elapsed_time_carries_over(tmp_path):
  wd = str(tmp_path)
  w = metrics.MetricsWriter(wd, hparams={"train.learning_rate": 1e-3})
  for step in (10, 20, 30):
    w.write(step, {"loss": 1.0 / step, "elapsed_s": float(step)})
  w.write(30, {"val_one_shot": 55.0, "val_one_shot_lo": 50.0, "val_one_shot_hi": 60.0})
  w.close()
  rows = metrics.read_metrics(wd)
  assert [r["step"] for r in rows] == [10, 20, 30, 30] and rows[-1]["val_one_shot"] == 55.0
  assert metrics.truncate(wd, 20) == 2  # a resume from step 20 drops what the lost run wrote after it
  assert [r["step"] for r in metrics.read_metrics(wd)] == [10, 20]
  elapsed = metrics.Elapsed(wd)
  assert 20.0 <= elapsed() < 25.0  # the run's clock starts where the kept records end
  assert all(json.loads(line) for line in open(tmp_path / "metrics.jsonl"))


def test_curves_plot_what_is_there(tmp_path):
  wd = str(tmp_path)
  w = metrics.MetricsWriter(wd)
  for step in range(1, 6):
    w.write(step, {"loss": 1.0 / step})
  w.close()
  assert metrics.plot_curves(wd, ("loss",), "loss.png", "loss") is not None and (tmp_path / "loss.png").stat().st_size
  assert metrics.plot_curves(wd, ("val_one_shot",), "validation.png", "validation") is None  # nothing to plot
