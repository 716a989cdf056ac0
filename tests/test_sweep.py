"""Sweeps on Ray Tune: dry runs, sampling, trial environment, and one real sweep that is killed and resumed."""

import json
import os
import signal
import subprocess
import sys
import time

from conftest import ROOT
import numpy as np
import pytest

from siamese_jax import sweep


def _sweep_cmd(*args):
  return [sys.executable, "-m", "siamese_jax.sweep", *args]


def test_dry_run_lists_trials_with_seeds_and_resources(tmp_path):
  def dry(path, *extra):
    proc = subprocess.run(
      _sweep_cmd(f"--sweep={path}", f"--workdir={tmp_path}", "--dry_run", *extra),
      cwd=ROOT,
      capture_output=True,
      text=True,
      timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout.strip().splitlines()

  table1 = dry("experiments/koch_table1.py")
  assert len(table1) == 6 and "fixed_pairs=150000" in table1[-1] and "augment.enabled=True" in table1[-1]
  lr = dry("experiments/lr.py", "--gpus_per_trial=0.25")
  assert len(lr) == 27 and all("'gpu': 0.25" in line for line in lr)  # 9 configurations x 3 seeds
  assert {line.split()[0].rsplit("_", 1)[1] for line in lr} == {"seed0", "seed1", "seed2"}
  assert "optuna search" in dry("experiments/cpu_search.py")[0]


def test_random_and_quasirandom_samples_stay_in_range():
  space = {
    "a": ("loguniform", 1e-4, 1e-2),
    "b": ("choice", [16, 32]),
    "c": ("uniform", 0.0, 2.0),
    "d": ("randint", 1, 4),
  }
  for quasi in (False, True):
    members = sweep.sample_members(space, 16, quasi=quasi)
    assert members == sweep.sample_members(space, 16, quasi=quasi)  # deterministic
    a = np.array([m["a"] for m in members])
    assert (a >= 1e-4).all() and (a <= 1e-2).all() and {m["b"] for m in members} == {16, 32}
    assert all(0 <= m["c"] <= 2 and m["d"] in (1, 2, 3) for m in members)


def test_every_sweep_file_builds_valid_configs_and_cpu_steps_keeps_its_rule():
  from siamese_jax import config_check

  for name in sorted(os.listdir(os.path.join(ROOT, "experiments"))):
    s = sweep.load_sweep(os.path.join(ROOT, "experiments", name))
    for m in (s["members"] or [])[:4]:
      if not m.get("_mode"):
        config_check.check(sweep.build_config(os.path.join(ROOT, s["config"]), m, 0))
  s = sweep.load_sweep(os.path.join(ROOT, "experiments", "cpu_steps.py"))
  assert s["baseline"] == s["members"][0] and len(sweep.plan(s, s["seeds"])) == 6
  c = sweep.build_config(os.path.join(ROOT, s["config"]), s["members"][1], 2)
  assert (c.validation.protocol, c.validation.drawers, c.train.max_epochs, c.seed) == (
    "lake_runs",
    tuple(range(1, 21)),
    40,
    2,
  )


def test_rank_pairs_gains_by_seed_against_the_baseline():
  def row(lr, seed, val):
    return {"overrides": {"lr": lr}, "seed": seed, "best_val": val, "curve": [val], "state": "finished"}

  rows = [row(1, 0, 80.0), row(1, 1, 81.0), row(1, 2, 82.0), row(2, 0, 83.0), row(2, 1, 83.5), row(2, 2, 84.0)]
  rows += [row(3, 0, 80.5), row(3, 1, 80.5), row(3, 2, 82.5)]
  ranked = {g["overrides"]["lr"]: g for g in sweep.rank(rows, baseline={"lr": 1})}
  assert ranked[2]["gain"] == pytest.approx(2.5) and ranked[2]["gain_sd"] == pytest.approx(0.5)
  assert ranked[2]["spread"] == pytest.approx(1.0) and ranked[2]["verdict"] == "better (3 seeds)"
  assert ranked[3]["gain"] == pytest.approx(0.1667, abs=1e-3) and ranked[3]["verdict"] == "a tie (3 seeds)"
  assert ranked[1]["verdict"] == "" and [g["overrides"]["lr"] for g in sweep.rank(rows)] == [2, 3, 1]


def test_trial_env_limits_jax_to_its_resources():
  cpu = sweep.trial_env(1, 0)
  assert cpu["JAX_PLATFORMS"] == "cpu" and "intra_op_parallelism_threads=1" in cpu["XLA_FLAGS"]
  assert "multi_thread_eigen=false" in cpu["XLA_FLAGS"]
  packed = sweep.trial_env(4, 0.25)
  assert "JAX_PLATFORMS" not in packed and packed["XLA_PYTHON_CLIENT_PREALLOCATE"] == "false"
  assert float(packed["XLA_PYTHON_CLIENT_MEM_FRACTION"]) < 0.25


SWEEP_FILE = """
CONFIG = "configs/koch.py:smoke"
SCHEDULER = "asha"
RESOURCES = {"cpu": 1}

def get_sweep():
  # learns / cannot learn (stopped early by ASHA) / refused by the config check (recorded, others go on)
  return [{"train.learning_rate": lr, "train.max_epochs": 4} for lr in (0.003, 1e-12, -1.0)]
"""


@pytest.mark.slow
def test_sweep_stops_hopeless_records_failed_resumes_after_kill_and_tests_only_the_winner(tiny_omniglot, tmp_path):
  manual, data_dir, _ = tiny_omniglot
  env = dict(os.environ, OMNIGLOT_DIR=manual, TFDS_DATA_DIR=data_dir)
  (tmp_path / "s.py").write_text(SWEEP_FILE)
  wd = tmp_path / "sweep"
  cmd = _sweep_cmd(f"--sweep={tmp_path / 's.py'}", f"--workdir={wd}", "--max_concurrent=1")
  first = subprocess.Popen(
    cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
  )
  done = wd / "trials" / "learning_rate=0.003_max_epochs=4_seed0" / sweep.DONE_FILE
  deadline = time.time() + 600
  while not done.exists() and first.poll() is None and time.time() < deadline:
    time.sleep(1)
  assert done.exists(), "the first trial did not finish"
  os.killpg(first.pid, signal.SIGKILL)  # the sweep and its Ray processes die mid-way
  first.wait()
  finished_at = json.loads(done.read_text())["finished"]
  again = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
  assert again.returncode == 0, again.stderr[-3000:]
  assert json.loads(done.read_text())["finished"] == finished_at  # the finished trial was not run again
  rows = {r["trial"]: r for r in __import__("csv").DictReader(open(wd / "sweep_results.csv"))}
  assert rows["learning_rate=0.003_max_epochs=4_seed0"]["state"] == "finished"
  assert rows["learning_rate=1e-12_max_epochs=4_seed0"]["state"] == "stopped early"
  assert int(rows["learning_rate=1e-12_max_epochs=4_seed0"]["epochs"]) < 4  # cut before its last epoch
  assert rows["learning_rate=-1_max_epochs=4_seed0"]["state"] == "failed"
  assert "learning_rate: must be a finite number > 0" in rows["learning_rate=-1_max_epochs=4_seed0"]["error"]
  results = (wd / "sweep_results.md").read_text()
  assert "ranked by validation only" in results and "lake" not in results.lower()
  test = (wd / "sweep_test.md").read_text()
  assert "played no part in choosing it" in test and "learning_rate=0.003" in test and "1e-12" not in test
  assert (wd / "sweep_validation.png").exists()
  env_used = json.loads((wd / "trials" / "learning_rate=0.003_max_epochs=4_seed0" / "trial_env.json").read_text())
  assert env_used["JAX_PLATFORMS"] == "cpu" and "intra_op_parallelism_threads=1" in env_used["XLA_FLAGS"]


def test_eval_figures_keep_lake_one_shot_and_episode_cells():
  from siamese_jax import sweep

  results = {
    "lake_runs": {"results": {"model": {"accuracy": 95.0}}},
    "one_shot": [
      {"scorer": "model", "set": "evaluation", "protocol": "within_alphabet", "n_way": 20, "shots": 1, "accuracy": 80.0}
    ],
    "episodes": [
      {"scorer": "model", "n_way": 5, "shots": 1, "accuracy": 98.0},
      {"scorer": "pixel_1nn", "n_way": 5, "shots": 1, "accuracy": 40.0},
    ],
  }
  assert sweep._eval_figures(results) == {
    "lake_accuracy": 95.0,
    "within_alphabet_20way_1shot": 80.0,
    "episodes_5way_1shot": 98.0,
  }
