"""Tools: learning curves over workdirs, the TTA study's drawer ranges."""

import json
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_learning_curves_script_tables_every_epoch(smoke_workdir, tmp_path):
  out = tmp_path / "curves.png"
  script = [sys.executable, "-m", "siamese_jax.tools.learning_curves"]
  ok = subprocess.run([*script, f"smoke={smoke_workdir}", f"--out={out}"], capture_output=True, text=True)
  assert ok.returncode == 0, ok.stderr[-2000:]
  rows = [line for line in ok.stdout.splitlines() if line.startswith("| ") and line[2].isdigit()]
  assert [int(r.split("|")[1]) for r in rows] == [1, 2, 3]  # max_epochs = 3, one row each
  assert "**smoke**" in ok.stdout and out.stat().st_size > 0
  bad = subprocess.run([*script, str(tmp_path)], capture_output=True, text=True)
  assert bad.returncode != 0 and "not a training workdir" in bad.stderr


def test_tta_script_reads_drawer_ranges():
  from siamese_jax.tools import tta

  assert tta.drawer_list(["1-20"]) == list(range(1, 21))
  assert tta.drawer_list(["13", "15-16"]) == [13, 15, 16]
  assert tta.drawer_list(None) is None


def test_conv_layers_times_every_formulation_of_every_layer():
  from configs import koch
  from siamese_jax.tools import conv_layers

  shapes = conv_layers.layer_shapes(koch.get_config("koch").model, 64)
  assert shapes[1] == ((64, 48, 48, 64), (7, 7, 64, 128)) and shapes[3] == ((64, 9, 9, 128), (4, 4, 128, 256))
  out = conv_layers.table(["smoke"], images=2, repeats=1, min_block_s=0.0, log=lambda s: None).splitlines()
  rows = [line for line in out if line.startswith("| smoke |")]
  assert len(rows) == len(koch.get_config("smoke").model.features)
  for row in rows:
    cells = [c.strip() for c in row.split("|")[5:11]]
    assert all(float(c) >= 0 for c in cells[:4]) and {cells[4], cells[5]} <= {"xla", "patches", "dft", "direct"}


def test_seed_table_gives_mean_and_sd_of_each_figure_over_workdirs(tmp_path):
  from siamese_jax.tools import seed_table

  for seed, (lake, across) in enumerate(((95.0, 90.0), (97.0, 92.0))):
    w = tmp_path / f"s{seed}"
    w.mkdir()
    results = {
      "lake_runs": {"results": {"model": {"accuracy": lake}}},
      "one_shot": [
        {
          "set": "evaluation",
          "scorer": "model",
          "protocol": "across_alphabet",
          "n_way": 20,
          "shots": 1,
          "total": 400,
          "accuracy": across,
        },
        {
          "set": "evaluation",
          "scorer": "model",
          "protocol": "across_alphabet",
          "n_way": 2,
          "shots": 1,
          "total": 400,
          "accuracy": 99.0,
        },
      ],
    }
    (w / "eval.json").write_text(json.dumps(results))
    (w / "metrics.jsonl").write_text(json.dumps({"val_one_shot": 80.0 + seed}) + "\n")
  table = seed_table.table([str(tmp_path / "s0"), str(tmp_path / "s1")], ways=(20,))
  assert "| model | lake | 95.00 | 97.00 | 96.00 +- 1.41 |" in table
  assert "| model | across_alphabet 20-way | 90.00 | 92.00 | 91.00 +- 1.41 |" in table
  assert "2-way" not in table and "| validation | best | 80.00 | 81.00 | 80.50 +- 0.71 |" in table
