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


def _seed_workdir(w, lake, across, seed):
  """A workdir with an eval.json and metrics.jsonl of the given figures."""
  w.mkdir()
  cell = {"set": "evaluation", "scorer": "model", "protocol": "across_alphabet", "shots": 1, "total": 400}
  results = {
    "lake_runs": {"results": {"model": {"accuracy": lake}}},
    "one_shot": [{**cell, "n_way": 20, "accuracy": across}, {**cell, "n_way": 2, "accuracy": 99.0}],
    "episodes": [{"scorer": "model", "n_way": 20, "shots": 5, "accuracy": 98.0 + seed}],
  }
  (w / "eval.json").write_text(json.dumps(results))
  rows = [{"step": 10, "loss": 0.5, "elapsed_s": 60.0 * (seed + 1)}, {"val_one_shot": 80.0 + seed}]
  (w / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
  return str(w)


def test_seed_table_gives_mean_and_sd_of_each_figure_over_workdirs(tmp_path):
  from siamese_jax.tools import seed_table

  wds = [
    _seed_workdir(tmp_path / f"s{s}", lake, across, s) for s, (lake, across) in enumerate(((95.0, 90.0), (97.0, 92.0)))
  ]
  table = seed_table.table(wds, ways=(20,))
  assert "| model | lake | 95.00 | 97.00 | 96.00 +- 1.41 |" in table
  assert "| model | across_alphabet 20-way | 90.00 | 92.00 | 91.00 +- 1.41 |" in table
  assert "2-way" not in table and "| validation | best | 80.00 | 81.00 | 80.50 +- 0.71 |" in table
  assert "| model | 20-way 5-shot | 98.00 | 99.00 | 98.50 +- 0.71 |" in table
  assert "| validation | training minutes | 1.00 | 2.00 | 1.50 +- 0.71 |" in table


def test_seed_table_compares_recipes_paired_by_seed_against_a_baseline(tmp_path):
  from siamese_jax.tools import seed_table

  base = [_seed_workdir(tmp_path / f"bce_s{s}", 95.0 + s, 90.0 + 2 * s, s) for s in range(3)]
  alt = [_seed_workdir(tmp_path / f"alt_s{s}", 99.0 + s, 90.5 + 2 * s, s) for s in range(3)]
  table = seed_table.compare(alt + base, "bce")
  assert table.splitlines()[0] == "| scorer | figure | alt | bce |"
  # lake: +4 on every seed against a spread of 1: better; the validation is the same: a tie
  assert "| model | lake | 100.00 +- 1.00; +4.00 +- 0.00, better | 96.00 +- 1.00 |" in table
  assert "| validation | best | 81.00 +- 1.00; +0.00 +- 0.00, a tie | 81.00 +- 1.00 |" in table
  assert "| validation | training minutes | 2.00 +- 1.00 | 2.00 +- 1.00 |" in table
  with pytest.raises(SystemExit, match="baseline"):
    seed_table.compare(alt, "bce")
  with pytest.raises(SystemExit, match="recipe"):
    seed_table.compare([_seed_workdir(tmp_path / "unnamed", 95.0, 90.0, 0)], "bce")


def test_epoch_picks_rescores_each_kept_epoch_as_training_did_and_judges_the_picks(
  smoke_workdir, tmp_path, monkeypatch
):
  import os
  import shutil

  from siamese_jax import metrics, selection, workdir
  from siamese_jax.tools import epoch_picks

  wd = str(tmp_path / "run")
  shutil.copytree(smoke_workdir, wd)
  s = epoch_picks.epoch_scores(wd, ["within_alphabet"], "within_alphabet", range(1, 13), 7)
  steps = workdir.checkpoint_steps(wd)
  assert [r["step"] for r in s["rows"]] == steps and len(steps) == 3
  trained = {r["step"]: r["val_one_shot"] for r in metrics.read_metrics(wd) if "val_one_shot" in r}
  assert [r["within_alphabet"] for r in s["rows"]] == [trained[x] for x in steps]  # the same tasks and figure
  vals = [r["within_alphabet"] for r in s["rows"]]
  assert s["picks"]["within_alphabet"] == s["rows"][vals.index(max(vals))]["epoch"]
  assert list(s["judge_tta"]) == [str(s["picks"]["within_alphabet"])]
  assert epoch_picks.epoch_scores(wd, ["within_alphabet"], "within_alphabet", range(1, 13), 7) == s  # kept file
  path = os.path.join(wd, epoch_picks.SCORES_FILE)
  with open(path) as f:
    partial = json.load(f)
  partial["rows"] = partial["rows"][:2]  # as if interrupted before the last epoch was scored
  with open(path, "w") as f:
    json.dump(partial, f)
  loaded, load = [], workdir.load_params
  monkeypatch.setattr(workdir, "load_params", lambda *a, **k: loaded.append(a[3]) or load(*a, **k))
  assert epoch_picks.epoch_scores(wd, ["within_alphabet"], "within_alphabet", range(1, 13), 7) == s
  assert loaded == [steps[2]]  # only what was missing
  with pytest.raises(selection.ValidationError, match="must avoid the validation drawers"):
    epoch_picks.epoch_scores(wd, ["within_alphabet"], "within_alphabet", range(10, 15), 7)


def test_epoch_picks_summary_pairs_each_protocol_with_the_baseline_by_seed():
  from siamese_jax.tools import epoch_picks

  def run(a_epoch, b_epoch, tta):
    rows = [{"epoch": e, "judge": 50.0 + e} for e in (1, 2, 3)]
    return {"rows": rows, "picks": {"a": a_epoch, "b": b_epoch}, "judge_tta": {str(e): t for e, t in tta.items()}}

  scores = {"s0": run(1, 3, {1: 60.0, 3: 64.0}), "s1": run(2, 2, {2: 61.0}), "s2": run(1, 3, {1: 62.0, 3: 67.0})}
  out = epoch_picks.summary(scores, ["a", "b"], "a").splitlines()
  assert out[2].startswith("| a | epoch 1: 51.00 / 60.00 | epoch 2: 52.00 / 61.00 |") and out[2].endswith(
    "| baseline |"
  )
  # gains 4, 0, 5: mean 3.00, sd 2.65, against the baseline's spread of 1.00
  assert out[3].endswith("| 64.00 +- 3.00 | +3.00 +- 2.65 | better |")
  assert out[4].startswith("| the judge's own best epoch (plain) | epoch 3: 53.00 / - |")
  assert epoch_picks.first_best([1.0, 3.0, 3.0, 2.0]) == 1
