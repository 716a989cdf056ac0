"""Evaluation harness: exact protocol, ties, determinism, Lake's runs, eval mode."""

import json
import signal

from conftest import coded_characters, feature_scorer, run_main, run_sweep
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import koch
from siamese_jax import evaluate, model, oneshot
from siamese_jax.omniglot.loader import CharacterArray


def test_known_answers():
  chars = coded_characters()
  perfect, _ = run_sweep(feature_scorer(0, "character"), chars)
  assert all(r["accuracy"] == 100.0 for r in perfect.values())
  # Every support shares one drawer: the drawer code ties all classes -> argmax picks 0.
  ties, _ = run_sweep(feature_scorer(1, "drawer"), chars, ways=(5,), num_tasks=2000)
  for r in ties.values():
    assert abs(r["accuracy"] - 20.0) < 4 * 100 * np.sqrt(0.2 * 0.8 / 2000)


def test_fitted_threshold_is_the_best_cut():
  p, y = np.array([0.9, 0.1, 0.3, 0.2, 0.4]), np.array([1, 0, 1, 0, 0])
  # Cuts at 0.25 and 0.65 both get 4 of 5 right (no cut gets 5): the lowest is kept.
  assert evaluate.fitted_threshold(p, y) == pytest.approx(0.25)
  assert np.sum(evaluate.verification_correct(p, y, 0.25)) == 4
  assert evaluate.fitted_threshold(np.array([0.2, 0.2, 0.7]), np.array([0, 0, 1])) == pytest.approx(0.45)
  assert evaluate.fitted_threshold(np.array([0.5, 0.5]), np.array([1, 0])) == 0.5  # no cut between ties
  assert evaluate.fitted_threshold(np.array([0.8, 0.9]), np.array([0, 0])) > 0.9  # everything "different"
  rng = np.random.default_rng(0)
  p, y = rng.uniform(size=500), rng.integers(0, 2, size=500)
  best = max(np.mean(evaluate.verification_correct(p, y, t)) for t in np.append(p, 2.0))
  assert np.mean(evaluate.verification_correct(p, y, evaluate.fitted_threshold(p, y))) == best


@pytest.mark.parametrize("n_way", [2, 5, 20])
def test_constant_model_scores_chance(n_way):
  cfg = koch.get_config("smoke").model
  params = model.init(jax.random.PRNGKey(0), cfg)
  params["head"]["w"] = jnp.zeros_like(params["head"]["w"])  # Every pair scores the same.
  chars = coded_characters(alphabet_sizes=(25, 30))
  chars = CharacterArray(np.zeros((55, 6, 32, 32, 1), np.uint8), chars.labels, chars.alphabets, chars.drawers)
  n_tasks = 3000
  rows, _ = run_sweep(oneshot.model_scorer(params, model.spec(cfg)), chars, ways=(n_way,), num_tasks=n_tasks)
  p = 1.0 / n_way
  for r in rows.values():
    assert abs(r["accuracy"] - 100 * p) < 4 * 100 * np.sqrt(p * (1 - p) / n_tasks), r


@pytest.mark.slow
def test_eval_mode_on_smoke_workdir(tiny_omniglot, tmp_path):
  manual, _, _ = tiny_omniglot
  workdir = tmp_path / "run"
  for mode in ("train", "eval"):
    proc = run_main(
      manual,
      tmp_path,
      f"--workdir={workdir}",
      "--config.train.max_epochs=1",
      "--config.eval.num_tasks=30",
      f"--config.eval.tta_copies={2 if mode == 'eval' else 1}",  # evaluation with test-time augmentation
      f"--mode={mode}",
    )
  assert "Lake's 20 official runs" in proc.stdout and "One-shot sweep" in proc.stdout
  results = json.load(open(workdir / "eval.json"))
  for name in ("accuracy_vs_n.png", "test_pairs.png"):
    assert (workdir / name).stat().st_size > 1000
  rows = results["one_shot"]
  assert {r["protocol"] for r in rows} == set(oneshot.PROTOCOLS)
  assert {r["set"] for r in rows} == {"evaluation", "train_alphabets"}
  r20 = [r for r in rows if r["n_way"] == 20 and r["protocol"] == "within_alphabet"]
  assert all(r["num_tasks"] == 0 for r in r20)  # Tiny alphabets have 3-4 characters: skipped.
  r2 = [r for r in rows if r["n_way"] == 2 and r["set"] == "evaluation"]
  assert all(r["num_tasks"] == 30 and len(r["ci95"]) == 2 for r in r2)
  assert results["lake_runs"]["results"]["model"]["encoder_passes"] == 80
  # With TTA the model without it is scored beside, and alone on the training alphabets.
  assert set(results["lake_runs"]["results"]) == {"model", "model_no_tta", "pixel_1nn"}
  assert {r["scorer"] for r in rows if r["set"] == "train_alphabets"} == {"model_no_tta"}
  assert "model, no TTA" in proc.stdout
  assert results["verification"]["fixed"]["total"] == 1000
  fitted = results["verification"]["fitted"]  # fitted on the validation alphabets' pairs
  assert fitted["total"] == 1000 and fitted["fit_pairs"] == 1000 and 0.0 <= fitted["threshold"] <= 1.0
  assert "at the threshold fitted on validation pairs" in proc.stdout
  assert results["tta"]["copies"] == 2


def test_fresh_runs_follow_lake_format_and_score_like_the_scorer():
  chars = coded_characters(alphabet_sizes=(25, 12, 30))  # the 12-character alphabet is never used
  tasks, run_alphabet = oneshot.make_lake_format_runs(chars.alphabets, len(chars.drawers), 50, seed=3)
  assert len(run_alphabet) == 50 and set(run_alphabet.tolist()) == {0, 2}
  again, _ = oneshot.make_lake_format_runs(chars.alphabets, len(chars.drawers), 50, seed=3)
  np.testing.assert_array_equal(again.query, tasks.query)  # deterministic
  d = len(chars.drawers)
  for r in range(50):
    q, s, t = (
      tasks.query[r * 20 : (r + 1) * 20],
      tasks.support[r * 20 : (r + 1) * 20, :, 0],
      tasks.target[r * 20 : (r + 1) * 20],
    )
    assert (s == s[0]).all()  # one support set per run
    assert len(set((s[0] // d).tolist())) == 20 and len(set((s[0] % d).tolist())) == 1  # 20 characters, one drawer
    assert set(chars.alphabets[s[0] // d].tolist()) == {run_alphabet[r]}
    assert sorted((q // d).tolist()) == sorted((s[0] // d).tolist())  # each character once as the query
    assert len(set((q % d).tolist())) == 1 and (q % d)[0] != (s[0] % d)[0]  # another drawer
    np.testing.assert_array_equal(s[0][t] // d, q // d)  # the target is the query's character
  ci = oneshot.bootstrap_ci(np.array([80.0, 90.0, 100.0, 70.0]))
  assert 70.0 <= ci[0] < 85.0 < ci[1] <= 100.0
  perfect = evaluate.fresh_lake_runs(feature_scorer(0, "char"), chars, 50, 3, 64)
  assert perfect["accuracy"] == 100.0 and perfect["num_runs"] == 50 and len(perfect["per_alphabet_accuracy"]) == 2
  blind = evaluate.fresh_lake_runs(feature_scorer(1, "drawer"), chars, 50, 3, 64)  # all candidates tie
  assert blind["accuracy"] < 15.0 and blind["ci95_runs"][0] <= blind["accuracy"] <= blind["ci95_runs"][1]


def test_eval_on_an_unwritable_workdir_prints_its_summary_and_writes_nothing(
  smoke_workdir, tmp_path, monkeypatch, capsys
):
  import shutil

  from siamese_jax import workdir

  wd = tmp_path / "run"
  shutil.copytree(smoke_workdir, wd)
  before = (wd / "eval.json").read_bytes()
  cfg = workdir.read_config(str(wd))
  cfg.eval.ways, cfg.eval.protocols, cfg.eval.num_tasks = (2,), ("across_alphabet",), 10
  cfg.eval.fresh_lake_runs, cfg.eval.mhd_baseline, cfg.eval.train_alphabet_tasks = 0, False, False
  cfg.eval.episodes, cfg.eval.episode_ways, cfg.eval.episode_shots, cfg.eval.episode_queries = 10, (5,), (1, 2), 2
  monkeypatch.setattr(workdir, "unwritable", lambda d: f"cannot write in {d}: Read-only file system")
  with pytest.raises(workdir.WorkdirError, match="Read-only file system: eval.json and the figures were not written"):
    evaluate.evaluate_workdir(cfg, str(wd))
  out = capsys.readouterr().out
  assert "One-shot sweep" in out  # the results were shown all the same
  assert "Episodes (the few-shot literature's protocol)" in out and "5-way 2-shot" in out
  assert (wd / "eval.json").read_bytes() == before


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_during_evaluation_is_one_line_and_leaves_eval_json_whole(
  signum, smoke_workdir, tiny_omniglot, tmp_path
):
  import shutil
  import subprocess
  import sys

  from conftest import ROOT

  wd = tmp_path / "run"
  shutil.copytree(smoke_workdir, wd)
  before = (wd / "eval.json").read_bytes()
  manual, data_dir, _ = tiny_omniglot
  cmd = [sys.executable, "-m", "siamese_jax.main", "--config=configs/koch.py:smoke", f"--workdir={wd}", "--mode=eval"]
  cmd += [f"--config.data.data_dir={data_dir}", f"--config.data.manual_dir={manual}"]
  proc = subprocess.Popen(cmd, cwd=ROOT, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
  for line in proc.stderr:
    if "one-shot sweep" in line:
      proc.send_signal(signum)
      break
  err = proc.stderr.read()
  assert proc.wait(timeout=120) == 128 + signum, err[-2000:]
  assert f"interrupted: stopped by {signum.name}" in err and "Traceback" not in err
  assert (wd / "eval.json").read_bytes() == before


def test_a_shots_sweep_in_one_run_equals_one_run_per_k():
  chars = coded_characters(alphabet_sizes=(8, 9), drawers=6)
  scorer = feature_scorer(0, "perfect")
  protocols = oneshot.PROTOCOLS

  def rows(shots):
    out, _ = evaluate.nway_accuracy(scorer, chars, "evaluation", (2, 5), protocols, shots, 50, 0, 64)
    return out

  both = rows((1, 3))
  assert [r["shots"] for r in both] == [1] * 4 + [3] * 4
  assert both[:4] == rows(1) and both[4:] == rows(3)  # the same tasks as a run per k
  from siamese_jax import workdir

  recorded = json.loads(koch.get_config("smoke").to_json())
  recorded["eval"]["shots"] = 1  # a config written when eval.shots was one number
  assert tuple(workdir.with_defaults(recorded, "x").eval.shots) == (1,)
