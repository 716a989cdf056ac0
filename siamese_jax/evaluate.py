"""Evaluation harness: N-way one-shot sweeps, Lake's 20 runs, verification, baselines.

Every image a set of tasks refers to is embedded exactly once per scorer; the
head then scores all query x support pairs of many tasks in one jitted call.
Results go to `<workdir>/eval.json` (every number with its protocol, N, number of
tasks and 95% CI), figures to `accuracy_vs_n.png` and `test_pairs.png`.
"""

from __future__ import annotations

import dataclasses
import os
import time

from absl import logging
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from siamese_jax import augment, defaults, figures, input_pipeline, lake_runs, oneshot
from siamese_jax import workdir as workdir_lib
from siamese_jax.omniglot import loader
from siamese_jax.omniglot.constants import ALPHABETS, OmniglotDataError

# Baseline scorers evaluated beside the model on the same tasks (eval.baselines).
BASELINES = {"pixel_1nn": oneshot.pixel_scorer}


def _result(correct: int, total: int) -> dict:
  acc = 100.0 * correct / total if total else float("nan")
  return {
    "accuracy": acc,
    "ci95": list(oneshot.accuracy_ci(correct, total)),
    "correct": int(correct),
    "total": int(total),
  }


def nway_tasks(chars: loader.CharacterArray, ways, protocols, shots, num_tasks: int, seed: int) -> list:
  """The (tasks, spec) of every k (`shots`: one or a tuple) x protocol x N of a sweep; the seed depends
  on the protocol and N only, so the k-shot tasks of one cell draw the same characters for every k."""
  return [
    oneshot.make_tasks(chars.alphabets, len(chars.drawers), protocol, n, k, num_tasks, seed=seed * 1000 + pi * 100 + n)
    for k in oneshot.shot_counts(shots)
    for pi, protocol in enumerate(protocols)
    for n in ways
  ]


def nway_accuracy(
  scorer: oneshot.Scorer,
  chars: loader.CharacterArray,
  set_name: str,
  ways,
  protocols,
  shots,
  num_tasks: int,
  seed: int,
  batch_size: int = 256,
) -> tuple[list[dict], int]:
  """Accuracy of `scorer` on N-way k-shot tasks for every k (`shots`: one or a tuple), N and protocol.

  Returns (rows, encoder passes); every referenced image is embedded once.
  """
  specs = nway_tasks(chars, ways, protocols, shots, num_tasks, seed)
  embedded = oneshot.EmbeddedSet(scorer, chars.images, batch_size)
  table, remap, passes = embedded.embed(*[a for t, _ in specs for a in (t.query, t.support)])
  rows = []
  for tasks, spec in specs:
    preds = oneshot.predict(scorer, table, remap, tasks)
    rows.append(
      {
        "set": set_name,
        "scorer": scorer.name,
        "protocol": spec.protocol,
        "n_way": spec.n_way,
        "shots": spec.shots,
        "num_tasks": spec.num_tasks,
        "eligible_alphabets": spec.eligible_alphabets,
        "chance": 100.0 / spec.n_way,
        **_result(int(np.sum(preds == tasks.target)), spec.num_tasks),
      }
    )
  return rows, passes


def episode_accuracy(
  scorer: oneshot.Scorer,
  chars: loader.CharacterArray,
  set_name: str,
  ways,
  shots,
  queries: int,
  episodes: int,
  seed: int,
  batch_size: int = 256,
) -> tuple[list[dict], int]:
  """Accuracy of `scorer` on the literature's N-way K-shot episodes (`oneshot.make_episodes`) for every
  N and K, as the papers report it: the mean over episodes of each episode's accuracy with
  +- 1.96 sd / sqrt(episodes), beside a bootstrap interval over episodes. Returns (rows, encoder
  passes); every referenced image is embedded once for all cells."""
  c, d = chars.images.shape[:2]
  cells = [
    ((n, k), oneshot.make_episodes(c, d, n, k, queries, episodes, seed * 1000 + 10 * n + k))
    for n in ways
    for k in shots
  ]
  table, remap, passes = oneshot.EmbeddedSet(scorer, chars.images, batch_size).embed(
    *[a for _, (t, _) in cells for a in (t.query, t.support)]
  )
  rows = []
  for (n, k), (tasks, episode) in cells:
    correct = oneshot.predict(scorer, table, remap, tasks) == tasks.target
    per_episode = 100.0 * np.bincount(episode, weights=correct, minlength=episodes) / (n * queries)
    half = 1.96 * float(np.std(per_episode)) / np.sqrt(episodes)
    mean = float(per_episode.mean())
    rows.append(
      {
        "set": set_name,
        "scorer": scorer.name,
        "protocol": "episodes",
        "n_way": n,
        "shots": k,
        "queries_per_class": queries,
        "num_episodes": episodes,
        "chance": 100.0 / n,
        "accuracy": mean,
        "ci95": [mean - half, mean + half],
        "ci95_bootstrap": list(oneshot.bootstrap_ci(per_episode)),
        "correct": int(correct.sum()),
        "total": int(correct.size),
      }
    )
  return rows, passes


def verification_pairs(chars: loader.CharacterArray, num_pairs: int, seed: int):
  """Balanced random pairs as flat indices (a [P], b [P]) and labels [P]."""
  c, d = chars.images.shape[:2]
  idx = input_pipeline.sample_pair_index(jax.random.PRNGKey(seed), c, d, num_pairs)
  idx = jax.tree_util.tree_map(np.asarray, idx)
  return idx.char_a * d + idx.drawer_a, idx.char_b * d + idx.drawer_b, idx.label.astype(int)


def pair_probabilities(scorer, chars, a, b, batch_size=256) -> tuple[np.ndarray, int]:
  """Model probabilities [P] that pairs (a, b) match, embedding each image once."""
  table, remap, passes = oneshot.EmbeddedSet(scorer, chars.images, batch_size).embed(a, b)
  logits = scorer.pair(scorer.params, table[remap(a)], table[remap(b)])
  return np.asarray(jax.nn.sigmoid(logits)), passes


def verification_correct(p: np.ndarray, y: np.ndarray, threshold: float = 0.5) -> np.ndarray:
  """Whether each pair is classified right: probability p >= threshold means "same"; bool, p's shape."""
  return (p >= threshold) == y


def fitted_threshold(p: np.ndarray, y: np.ndarray) -> float:
  """The threshold t maximising the accuracy of (p >= t) == y over pairs p [P], y [P] (1: same):
  the midpoint of the two adjacent scores the best cut falls between (the lowest best cut)."""
  order = np.argsort(p, kind="stable")
  ps, ys = np.asarray(p, np.float64)[order], np.asarray(y, np.int64)[order]
  # A cut before sorted index i calls pairs i.. "same": correct = different below + same from i on.
  correct = np.concatenate([[0], np.cumsum(1 - ys)]) + ys.sum() - np.concatenate([[0], np.cumsum(ys)])
  can_cut = np.concatenate([[True], ps[1:] > ps[:-1], [True]])  # never between equal scores
  i = int(np.argmax(np.where(can_cut, correct, -1)))
  if i == 0:
    return float(ps[0])
  if i == len(ps):
    return float(np.nextafter(ps[-1], np.inf))
  return float((ps[i - 1] + ps[i]) / 2)


def fit_verification_threshold(scorer, chars, num_pairs: int, seed: int, batch_size: int) -> dict:
  """The verification threshold fitted on `num_pairs` balanced pairs of `chars` (the validation
  alphabets) and the accuracy there, in percent."""
  a, b, y = verification_pairs(chars, num_pairs, seed)
  p, _ = pair_probabilities(scorer, chars, a, b, batch_size)
  t = fitted_threshold(p, y)
  return {"threshold": t, "fit_accuracy": 100.0 * float(np.mean(verification_correct(p, y, t))), "fit_pairs": len(y)}


def verification(scorer, chars, cfg, fitted: dict | None = None) -> dict:
  """The MATLAB example's protocol (batches x pairs at threshold 0.5) and a larger fixed set, at 0.5
  and, given `fitted` (`fit_verification_threshold` on the validation alphabets), at its threshold."""
  nb, per = cfg.matlab_verification
  out = {"threshold": 0.5}
  a, b, y = verification_pairs(chars, nb * per, cfg.seed + 1)
  p, _ = pair_probabilities(scorer, chars, a, b, cfg.batch_size)
  correct = verification_correct(p, y).reshape(nb, per)
  out["matlab"] = {
    "protocol": f"{nb} batches x {per} balanced random pairs, threshold 0.5",
    "batch_accuracy": (100.0 * correct.mean(axis=1)).tolist(),
    **_result(int(correct.sum()), nb * per),
  }
  a, b, y = verification_pairs(chars, cfg.verification_pairs, cfg.seed + 2)
  p, passes = pair_probabilities(scorer, chars, a, b, cfg.batch_size)
  out["fixed"] = {
    "protocol": f"{cfg.verification_pairs} balanced random pairs (seed {cfg.seed + 2}), threshold 0.5",
    "encoder_passes": passes,
    **_result(int(np.sum(verification_correct(p, y))), len(y)),
  }
  if fitted is not None:
    t = fitted["threshold"]
    out["fitted"] = {
      **fitted,
      "protocol": f"the fixed set at the threshold fitted on {fitted['fit_pairs']} validation pairs",
      **_result(int(np.sum(verification_correct(p, y, t))), len(y)),
    }
  out["examples"] = {"a": a[:10].tolist(), "b": b[:10].tolist(), "target": y[:10].tolist(), "score": p[:10].tolist()}
  return out


def score_lake_runs(scorer: oneshot.Scorer, runs, image_size: int, batch_size: int = 256) -> dict:
  """Error on Lake's runs: each run's 40 images embedded once (800 passes for 20 runs)."""
  test = np.stack([r.test for r in runs])  # [R, 20, ...]
  train = np.stack([r.train for r in runs])
  images = loader.resize_images(np.concatenate([test, train], axis=1), image_size)
  flat = images.reshape((-1,) + images.shape[2:])
  emb = jnp.asarray(oneshot.embed_images(scorer, flat, batch_size)).reshape(images.shape[:2] + (-1,))
  n_test = test.shape[1]
  scores = scorer.pair(scorer.params, emb[:, :n_test, None, :], emb[:, None, n_test:, :])  # [R, T, C]
  preds = list(np.asarray(jnp.argmax(scores, axis=-1)))
  return _lake_result(runs, preds, encoder_passes=len(flat))


def _lake_result(runs, preds, **extra) -> dict:
  errors = lake_runs.error_rates(runs, preds)
  correct = int(sum(np.sum(p == r.answer) for r, p in zip(runs, preds)))
  total = sum(len(r.answer) for r in runs)
  return {
    "error": float(errors.mean()),
    "per_run_error": errors.tolist(),
    **_result(correct, total),
    "ci95_runs": list(oneshot.bootstrap_ci(100.0 - errors)),
    **extra,
  }


def fresh_lake_runs(
  scorer: oneshot.Scorer, chars: loader.CharacterArray, num_runs: int, seed: int, batch_size: int = 256
) -> dict:
  """Accuracy on `num_runs` fresh runs in Lake's format drawn from `chars` (see `oneshot.make_lake_format_runs`):
  overall with a Wilson interval over queries and a bootstrap interval over runs, per run and per alphabet."""
  tasks, run_alphabet = oneshot.make_lake_format_runs(chars.alphabets, len(chars.drawers), num_runs, seed)
  out = {
    "protocol": f"fresh runs in Lake's format (20-way within-alphabet, one drawer for the support, another"
    f" for the queries), seed {seed}",
    "num_runs": len(run_alphabet),
  }
  if not len(run_alphabet):
    return {**out, "skipped": "no alphabet with 20 characters"}
  table, remap, passes = oneshot.EmbeddedSet(scorer, chars.images, batch_size).embed(tasks.query, tasks.support)
  correct = (oneshot.predict(scorer, table, remap, tasks) == tasks.target).reshape(len(run_alphabet), -1)
  per_run = 100.0 * correct.mean(axis=1)
  per_alphabet = _per_alphabet(per_run, [chars.group_names[int(a)] for a in run_alphabet])
  return {
    **out,
    **_result(int(correct.sum()), correct.size),
    "ci95_runs": list(oneshot.bootstrap_ci(per_run)),
    "per_run_accuracy": per_run.tolist(),
    "per_alphabet_accuracy": per_alphabet,
    "encoder_passes": passes,
  }


def lake_evaluation(scorers, config) -> dict:
  """Scores every scorer (and optionally the MHD baseline) on Lake's 20 runs."""
  if config.data.source != "omniglot":
    return {"skipped": f"Lake's runs are Omniglot's; this model trained on data.source {config.data.source!r}"}
  if config.data.character_split:
    from siamese_jax.omniglot import splits  # pylint: disable=g-import-not-at-top

    trained = {a for _, a in splits.characters(config.data.character_split, "train")}
    seen = sorted(trained & set(defaults.TEST_ALPHABETS))
    return {
      "skipped": f"a model trained on the {config.data.character_split} split trained on characters of"
      f" {', '.join(seen)}, alphabets of Lake's runs: its score there would not be a test"
    }
  try:
    path = lake_runs.find_runs_zip(
      config.eval.lake_runs, config.data.manual_dir, config.data.data_dir or os.path.expanduser("~/tensorflow_datasets")
    )
    runs = lake_runs.load_runs(path)
  except OmniglotDataError as e:
    logging.warning("skipping Lake's runs: %s", e)
    return {"skipped": str(e)}
  out = {
    "protocol": "lake_official_20_runs (20-way within-alphabet one-shot, 20 runs x 20 items)",
    "zip": os.path.abspath(path),
    "n_way": 20,
    "num_runs": len(runs),
    "chance": 5.0,
    "results": {},
  }
  for s in scorers:
    out["results"][s.name] = score_lake_runs(s, runs, config.model.image_size, config.eval.batch_size)
  if config.eval.mhd_baseline:
    out["results"]["mhd"] = _lake_result(runs, lake_runs.mhd_predictions(runs))
  native = loader.load_characters("evaluation", data_dir=config.data.data_dir, manual_dir=config.data.manual_dir)
  alphabets = lake_runs.run_alphabets(runs, native.images, native.alphabets)
  out["run_alphabets"] = [ALPHABETS[a] if a is not None else None for a in alphabets]
  for r in out["results"].values():
    r["per_alphabet_accuracy"] = _per_alphabet(100.0 - np.array(r["per_run_error"]), out["run_alphabets"])
  return out


def _per_alphabet(per_run: np.ndarray, names: list[str | None]) -> dict[str, float]:
  """Mean of per-run accuracies [R] by the runs' alphabet names (runs of no known alphabet left out)."""
  return {n: float(np.mean([a for a, m in zip(per_run, names) if m == n])) for n in sorted(set(names) - {None})}


def load_eval_characters(config, which: str) -> loader.CharacterArray:
  """Characters of the evaluation set ("evaluation") or of the (unrotated) training alphabets."""
  if which == "evaluation":
    return input_pipeline.held_out_characters(config.eval, config.data, config.model.image_size, config.model.channels)
  return input_pipeline.training_characters(config.data, config.model.image_size, False, config.model.channels)


def evaluate_params(config: ml_collections.ConfigDict, params):
  """Runs the whole evaluation of `params`; returns (eval.json contents, evaluation characters)."""
  e = config.eval
  t0 = time.time()
  plain = oneshot.config_scorer(params, config.model)
  model_s = oneshot.tta_from_config(plain, config.augment, e)
  # With test-time augmentation, the model without it is scored beside (and alone on the training
  # alphabets, an over-fitting check that would cost e.tta_copies times as many encoder passes).
  tta = model_s is not plain
  plain = dataclasses.replace(plain, name="model_no_tta") if tta else plain
  scorers = [model_s] + [plain] * tta + [BASELINES[name]() for name in e.baselines]
  results = {
    "protocols": {
      oneshot.WITHIN_ALPHABET: "all N candidates from one alphabet (Lake's benchmark); alphabets"
      " with fewer than N characters are skipped",
      oneshot.ACROSS_ALPHABET: "candidates drawn from the whole set of characters",
    },
    "one_shot": [],
    "encoder_passes": {},
    "tta": {
      "copies": e.tta_copies,
      "strength": e.tta_strength,
      "seed": e.tta_seed,
    },
  }
  ev = load_eval_characters(config, "evaluation")
  sets = [("evaluation", ev, scorers)]
  if e.train_alphabet_tasks:
    sets.append(("train_alphabets", load_eval_characters(config, "train"), [plain]))
  for set_name, chars, set_scorers in sets:
    for s in set_scorers:
      logging.info("one-shot sweep: %s on %s (%d characters)", s.name, set_name, chars.num_characters)
      rows, passes = nway_accuracy(s, chars, set_name, e.ways, e.protocols, e.shots, e.num_tasks, e.seed, e.batch_size)
      results["one_shot"] += rows
      results["encoder_passes"][f"{set_name}/{s.name}"] = passes
  logging.info("verification: %d pairs; threshold fitted on the validation alphabets", e.verification_pairs)
  v = config.validation
  val_chars = input_pipeline.held_out_characters(v, config.data, config.model.image_size, config.model.channels)
  fitted = fit_verification_threshold(model_s, val_chars, e.verification_pairs, v.seed + 1, e.batch_size)
  results["verification"] = verification(model_s, ev, e, fitted)
  logging.info("Lake's 20 official runs")
  results["lake_runs"] = lake_evaluation(scorers, config)
  results["fresh_lake_runs"] = {}
  for s in scorers:
    logging.info("%d fresh Lake-format runs: %s", e.fresh_lake_runs, s.name)
    results["fresh_lake_runs"][s.name] = fresh_lake_runs(s, ev, e.fresh_lake_runs, e.seed + 3, e.batch_size)
  if e.episodes:
    pool = augment.with_rotated_classes(ev) if e.episode_rotations else ev
    results["episodes"] = []
    for s in scorers:
      logging.info("%d episodes of each N-way K-shot cell: %s on %d classes", e.episodes, s.name, pool.num_characters)
      ways, shots, q = e.episode_ways, e.episode_shots, e.episode_queries
      rows, passes = episode_accuracy(s, pool, "evaluation", ways, shots, q, e.episodes, e.seed + 4, e.batch_size)
      results["episodes"] += rows
      results["encoder_passes"][f"episodes/{s.name}"] = passes
  results["seconds"] = time.time() - t0
  return results, ev


def evaluate_workdir(config: ml_collections.ConfigDict, workdir: str, params=None) -> dict:
  """Evaluates `params` (default: the workdir's checkpoint); writes eval.json and figures."""
  if params is None:
    params = workdir_lib.load_params(workdir, config.model)
  unwritable = workdir_lib.unwritable(workdir)
  if unwritable:
    logging.warning("%s: the evaluation runs, its summary is printed, nothing is saved", unwritable)
  results, ev = evaluate_params(config, params)
  if unwritable:
    print(summary_table(results))
    raise workdir_lib.WorkdirError(f"{unwritable}: eval.json and the figures were not written (summary above)")
  workdir_lib.write_json(os.path.join(workdir, workdir_lib.EVAL_FILE), results)
  figures.plot_accuracy_vs_n(results["one_shot"], os.path.join(workdir, "accuracy_vs_n.png"))
  ex = results["verification"]["examples"]
  flat = ev.images.reshape((-1,) + ev.images.shape[2:])
  figures.plot_test_pairs(
    flat[ex["a"]], flat[ex["b"]], ex["target"], ex["score"], os.path.join(workdir, "test_pairs.png")
  )
  print(summary_table(results))
  return results


def _fmt(r: dict | None) -> str:
  if not r or not r.get("total"):
    return "n/a"
  return f"{r['accuracy']:5.1f} [{r['ci95'][0]:4.1f}, {r['ci95'][1]:4.1f}]"


def summary_table(results: dict) -> str:
  """A plain-text table of every accuracy with its 95% CI."""
  lines = []
  lake = results.get("lake_runs", {})
  if "results" in lake:
    lines.append("Lake's 20 official runs (20-way within-alphabet), accuracy % [95% CI]:")
    for name, r in lake["results"].items():
      runs_ci = r.get("ci95_runs", [float("nan")] * 2)
      lines.append(
        f"  {name:<10} {_fmt(r)}   error {r['error']:.1f}%   over runs [{runs_ci[0]:4.1f}, {runs_ci[1]:4.1f}]"
      )
    lines.append("  chance      5.0")
  else:
    lines.append(f"Lake's runs skipped: {lake.get('skipped')}")
  fresh = {name: r for name, r in results.get("fresh_lake_runs", {}).items() if r.get("total")}
  if fresh:
    n = max(r["num_runs"] for r in fresh.values())
    lines.append(
      f"{n} fresh runs in Lake's format from the test alphabets, accuracy % [95% CI over queries], [over runs]:"
    )
    for name, r in fresh.items():
      lines.append(f"  {name:<10} {_fmt(r)}   [{r['ci95_runs'][0]:4.1f}, {r['ci95_runs'][1]:4.1f}]")
  v = results["verification"]
  lines.append(f"Verification: MATLAB protocol {_fmt(v['matlab'])}; {v['fixed']['total']} pairs {_fmt(v['fixed'])}")
  if "fitted" in v:
    f = v["fitted"]
    lines.append(f"  at the threshold fitted on validation pairs ({f['threshold']:.3f}): {_fmt(f)}")
  lines.append("One-shot sweep, accuracy % [95% CI]:")
  columns = [("model", "model")] + [("model_no_tta", "model, no TTA")] * any(
    r["scorer"] == "model_no_tta" for r in results["one_shot"]
  )
  columns.append(("pixel_1nn", "pixel 1-NN"))
  header = f"  {'set':<16} {'protocol':<16} {'N':>3} {'k':>2} {'tasks':>5}  "
  lines.append(header + "".join(f"{title:<23}" for _, title in columns) + "chance")
  keyed = {}
  for r in results["one_shot"]:
    keyed.setdefault((r["set"], r["protocol"], r["n_way"], r["shots"]), {})[r["scorer"]] = r
  for (set_name, protocol, n, k), by in keyed.items():
    tasks = max(r["num_tasks"] for r in by.values())
    cells = "".join(f"{_fmt(by.get(name)):<23}" for name, _ in columns)
    lines.append(f"  {set_name:<16} {protocol:<16} {n:>3} {k:>2} {tasks:>5}  {cells}{100.0 / n:5.1f}")
  episodes = results.get("episodes", [])
  if episodes:
    lines.append("Episodes (the few-shot literature's protocol), mean accuracy % +- 1.96 sd / sqrt(episodes):")
    for r in episodes:
      half = (r["ci95"][1] - r["ci95"][0]) / 2
      lines.append(
        f"  {r['scorer']:<14} {r['n_way']:>3}-way {r['shots']}-shot  {r['accuracy']:6.2f} +- {half:4.2f}"
        f"   ({r['num_episodes']} episodes, {r['queries_per_class']} queries per class)"
      )
  return "\n".join(lines)
