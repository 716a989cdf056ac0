"""Config sweeps on Ray Tune: `python -m siamese_jax.sweep --sweep=experiments/cpu_seeds.py --workdir=runs/seeds`.

Runs in-process on this machine by default (Ray starts and stops with the command);
`--address=auto` (or HOST:PORT) runs the same sweep on a Ray cluster, with
`--workdir` on storage every node sees. A sweep file defines:

  CONFIG       a config argument, e.g. "configs/koch.py:cpu"
  get_sweep()  members: a list of override dicts ({"train.learning_rate": 1e-3, ...};
               `grid` builds a product) ...
  SPACE        ... or ranges {"key": ("loguniform", lo, hi) | ("uniform", lo, hi) |
               ("randint", lo, hi) | ("choice", [values])}, drawn by SEARCH:
               "random", "quasirandom" (Sobol) or "optuna" (model-based, TPE), NUM_SAMPLES of them
  SEEDS        seeds per configuration (default 1; `--seeds` overrides); seed k sets config.seed = k
  SCHEDULER    None, "asha" or "median": stops weak trials early on validation accuracy
  BASELINE     the overrides of the configuration the others are measured against ({}: the preset):
               the summary gives each one's gain over it paired by seed, and a verdict against the
               baseline's seed spread (`selection.paired_gain`, `selection.verdict`)
  RESOURCES    per trial, e.g. {"cpu": 2, "gpu": 0.25} (`--cpus_per_trial`, `--gpus_per_trial`)

Each trial is `train.train` with its overrides in `<workdir>/trials/<name>`, reporting
every epoch's validation to Tune with a checkpoint that points at that workdir's
orbax state. A rerun of the same command resumes the sweep: finished trials are
kept, interrupted ones continue from their checkpoint, failed ones stay failed
(`--retry_failed` runs them again). The summary ranks configurations by mean
validation accuracy over seeds (by the config's `validation.protocol`: `selection.PROTOCOLS`;
`sweep_results.md`, `.csv`, `sweep_validation.png`);
only then is the chosen configuration evaluated on the test protocols, in
`sweep_test.md`, which played no part in the choice. Members with "_mode": "eval"
and "_from": WORKDIR evaluate a trained workdir instead (no choice is made).
"""

from __future__ import annotations

import csv
import importlib.util
import itertools
import json
import os
import re
import statistics
import sys
import tempfile
import time
from typing import Any

from absl import app, flags

from siamese_jax import figures
from siamese_jax import workdir as workdir_lib

FLAGS = flags.FLAGS
METRIC = "val_one_shot"
DONE_FILE = "trial_done.json"
SEARCHERS = ("grid", "random", "quasirandom", "optuna")
SCHEDULERS = (None, "asha", "median")


# --- sweep files -------------------------------------------------------------------------------------


def grid(axes: dict[str, list]) -> list[dict[str, Any]]:
  """The product of the value lists: grid({"a": [1, 2], "b": [3]}) -> [{a:1,b:3}, {a:2,b:3}]."""
  keys = list(axes)
  return [dict(zip(keys, values)) for values in itertools.product(*(axes[k] for k in keys))]


class SweepError(ValueError):
  """A sweep file or flag that cannot be run."""


def load_sweep(path: str) -> dict[str, Any]:
  """The sweep file's settings: config, members or space, search, samples, seeds, scheduler, resources."""
  if not os.path.exists(path):
    raise SweepError(f"no sweep file {path}")
  spec = importlib.util.spec_from_file_location("sweep_file", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  if not hasattr(module, "CONFIG") or not (hasattr(module, "get_sweep") or hasattr(module, "SPACE")):
    raise SweepError(f"{path} must define CONFIG and get_sweep() or SPACE")
  s = {
    "config": module.CONFIG,
    "search": getattr(module, "SEARCH", "grid" if hasattr(module, "get_sweep") else "random"),
    "space": getattr(module, "SPACE", None),
    "num_samples": int(getattr(module, "NUM_SAMPLES", 8)),
    "seeds": int(getattr(module, "SEEDS", 1)),
    "scheduler": getattr(module, "SCHEDULER", None),
    "resources": {"cpu": 1, "gpu": 0, **getattr(module, "RESOURCES", {})},
    "baseline": getattr(module, "BASELINE", None),
  }
  if s["search"] not in SEARCHERS:
    raise SweepError(f"{path}: SEARCH={s['search']!r}; choose from {list(SEARCHERS)}")
  if s["scheduler"] not in SCHEDULERS:
    raise SweepError(f"{path}: SCHEDULER={s['scheduler']!r}; choose from {list(SCHEDULERS)}")
  s["members"] = list(module.get_sweep()) if s["search"] == "grid" else None
  if s["search"] == "grid" and not s["members"]:
    raise SweepError(f"{path}: get_sweep() returned no members")
  if s["search"] != "grid" and not s["space"]:
    raise SweepError(f"{path}: SEARCH={s['search']!r} needs SPACE")
  return s


def sample_members(space: dict[str, tuple], num: int, quasi: bool, seed: int = 0) -> list[dict[str, Any]]:
  """`num` override dicts drawn from `space`: uniformly at random, or from a scrambled Sobol sequence."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  from scipy.stats import qmc  # pylint: disable=g-import-not-at-top

  keys = sorted(space)
  if quasi:
    u = qmc.Sobol(len(keys), scramble=True, seed=seed).random(num)
  else:
    u = np.random.default_rng(seed).random((num, len(keys)))
  members = []
  for row in u:
    m = {}
    for key, x in zip(keys, row):
      kind, *args = space[key]
      if kind == "uniform":
        m[key] = float(args[0] + x * (args[1] - args[0]))
      elif kind == "loguniform":
        m[key] = float(np.exp(np.log(args[0]) + x * (np.log(args[1]) - np.log(args[0]))))
      elif kind == "randint":
        m[key] = int(args[0] + min(int(x * (args[1] - args[0])), args[1] - args[0] - 1))
      elif kind == "choice":
        m[key] = args[0][min(int(x * len(args[0])), len(args[0]) - 1)]
      else:
        raise SweepError(f"SPACE[{key!r}]: unknown kind {kind!r}; use uniform, loguniform, randint or choice")
    members.append(m)
  return members


def tune_space(space: dict[str, tuple]) -> dict[str, Any]:
  """`space` as Ray Tune domains (for the Optuna searcher)."""
  from ray import tune  # pylint: disable=g-import-not-at-top

  kinds = {"uniform": tune.uniform, "loguniform": tune.loguniform, "randint": tune.randint}
  out = {}
  for key, (kind, *args) in space.items():
    out[key] = tune.choice(args[0]) if kind == "choice" else kinds[kind](*args)
  return out


def trial_name(overrides: dict[str, Any], seed: int) -> str:
  """A directory-safe, deterministic name: '<key>=<value>_..._seed<k>' (hashed when long)."""
  parts = [f"{k.split('.')[-1]}={_format(v)}" for k, v in sorted(overrides.items()) if not k.startswith("_")]
  if "_from" in overrides:
    parts.insert(0, os.path.basename(os.path.normpath(overrides["_from"])))
  slug = re.sub(r"[^A-Za-z0-9=.,_-]+", "", "_".join(parts))
  if len(slug) > 80:
    import hashlib  # pylint: disable=g-import-not-at-top

    slug = slug[:70] + "_" + hashlib.sha1(slug.encode()).hexdigest()[:8]
  return f"{slug or 'default'}_seed{seed}"


def _format(value) -> str:
  if isinstance(value, float):
    return f"{value:.6g}"
  if isinstance(value, (list, tuple)):
    return "(" + ",".join(_format(v) for v in value) + ("," if len(value) == 1 else "") + ")"
  return str(value)


def build_config(config_arg: str, overrides: dict[str, Any], seed: int):
  """The config of one trial: the config file's preset, its overrides (dotted keys) and the seed."""
  path, _, preset = config_arg.partition(":")
  spec = importlib.util.spec_from_file_location("sweep_config", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  config = module.get_config(preset) if preset else module.get_config()
  for key, value in overrides.items():
    if key.startswith("_"):
      continue
    *parents, leaf = key.split(".")
    node = config
    for p in parents:
      node = node[p]
    if leaf not in node:
      raise SweepError(f"config.{key}: unknown key (a typo?)")
    node[leaf] = tuple(value) if isinstance(value, list) else value
  config.seed = seed
  return config


# --- trials (run in Ray workers) -------------------------------------------------------------------


def trial_env(cpus: float, gpus: float) -> dict[str, str]:
  """Environment for JAX in a Ray worker: XLA's CPU threads = the trial's CPUs; no GPU for a CPU trial;
  no preallocation (and a memory cap) for a fractional GPU."""
  threads = max(1, int(cpus))
  env = {
    "XLA_FLAGS": f"--xla_cpu_multi_thread_eigen={'true' if threads > 1 else 'false'}"
    f" intra_op_parallelism_threads={threads}",
    "OMP_NUM_THREADS": str(threads),
    "TF_CPP_MIN_LOG_LEVEL": "2",
  }
  if not gpus:
    env["JAX_PLATFORMS"] = "cpu"
  elif gpus < 1:
    env["XLA_PYTHON_CLIENT_PREALLOCATE"] = "false"
    env["XLA_PYTHON_CLIENT_MEM_FRACTION"] = f"{gpus * 0.95:.2f}"
  return env


def run_trial(tune_config: dict, config_arg: str, sweep_dir: str, extra: dict):
  """One trial: train (or evaluate) the overridden config in its own workdir, reporting each epoch to Tune."""
  from ray import tune  # pylint: disable=g-import-not-at-top

  from siamese_jax import host  # pylint: disable=g-import-not-at-top

  host.tune_allocator()
  from siamese_jax import evaluate, train, workdir  # pylint: disable=g-import-not-at-top

  overrides, seed = _trial_of(tune_config)
  wd = os.path.join(sweep_dir, "trials", trial_name(overrides, seed))
  previous = tune.get_checkpoint()
  if previous is not None:  # the checkpoint points at the trial's workdir (whose orbax state resumes)
    with previous.as_directory() as d, open(os.path.join(d, "workdir.txt")) as f:
      wd = f.read().strip()
  if os.path.exists(os.path.join(wd, DONE_FILE)):  # finished before the sweep was killed: not run again
    from siamese_jax import metrics  # pylint: disable=g-import-not-at-top

    last = [r for r in metrics.read_metrics(wd) if METRIC in r or "lake_accuracy" in r]
    tune.report({k: v for k, v in (last[-1] if last else {}).items() if isinstance(v, (int, float))})
    return
  os.makedirs(wd, exist_ok=True)
  with workdir_lib.atomic_file(os.path.join(wd, "trial_env.json")) as f:
    json.dump({k: os.environ.get(k) for k in ("XLA_FLAGS", "JAX_PLATFORMS", "XLA_PYTHON_CLIENT_PREALLOCATE")}, f)
  config = build_config(config_arg, {**overrides, **extra}, seed)
  if overrides.get("_mode") == "eval":
    source = overrides["_from"]
    results = evaluate.evaluate_workdir(
      workdir.with_recorded_model(config, source),
      wd,
      params=workdir.load_params(source, workdir.read_config(source).model),
    )
    _mark_done(wd)
    tune.report(_eval_figures(results))
    return
  if not config.validation.enabled:
    raise SweepError("sweep trials choose on validation: validation.enabled must stay True")

  def report(epoch: int, metrics: dict) -> None:
    pointer = tempfile.mkdtemp(prefix="siamese_ckpt_")
    with workdir_lib.atomic_file(os.path.join(pointer, "workdir.txt")) as f:
      f.write(wd)
    tune.report({**metrics, "epoch": epoch}, checkpoint=tune.Checkpoint.from_directory(pointer))

  train.train(config, wd, on_epoch=report)
  _mark_done(wd)


def _trial_of(tune_config: dict) -> tuple[dict[str, Any], int]:
  """(overrides, seed) of a trial's Tune config: {"trial": {...}} (grid) or {"overrides", "__trial_index__"}."""
  t = tune_config.get("trial", tune_config)
  return dict(t.get("overrides") or {}), int(t.get("seed", tune_config.get("__trial_index__", 0)))


def _mark_done(wd: str) -> None:
  with workdir_lib.atomic_file(os.path.join(wd, DONE_FILE)) as f:
    json.dump({"finished": time.time()}, f)


def _eval_figures(results: dict) -> dict[str, float]:
  """The headline numbers of an eval.json: Lake's runs, the one-shot sweep's cells and the episodes' cells."""
  out = {}
  lake = results.get("lake_runs", {}).get("results", {}).get("model")
  if lake:
    out["lake_accuracy"] = lake["accuracy"]
  for r in results.get("one_shot", []):
    if r["scorer"] == "model" and r["set"] == "evaluation":
      out[f"{r['protocol']}_{r['n_way']}way_{r['shots']}shot"] = r["accuracy"]
  for r in results.get("episodes", []):
    if r["scorer"] == "model":
      out[f"episodes_{r['n_way']}way_{r['shots']}shot"] = r["accuracy"]
  return out


# --- the driver --------------------------------------------------------------------------------------


def plan(sweep: dict, seeds: int) -> list[tuple[dict[str, Any], int]]:
  """(overrides, seed) of every trial of a grid or sampled sweep (None for a model-based search)."""
  if sweep["search"] == "optuna":
    return None
  members = sweep["members"]
  if members is None:
    members = sample_members(sweep["space"], sweep["num_samples"], quasi=sweep["search"] == "quasirandom")
  return [(m, s) for m in members for s in range(seeds if not m.get("_mode") else 1)]


def run_sweep(
  sweep_file: str,
  workdir: str,
  seeds: int | None = None,
  resources: dict | None = None,
  address: str | None = None,
  storage: str | None = None,
  max_concurrent: int = 0,
  retry_failed: bool = False,
  evaluate_winner: bool = True,
  log=print,
) -> list[dict]:
  """Runs (or resumes) a sweep with Ray Tune; writes the summary; returns one row per trial."""
  import ray  # pylint: disable=g-import-not-at-top
  from ray import tune  # pylint: disable=g-import-not-at-top

  sweep = load_sweep(sweep_file)
  seeds = seeds or sweep["seeds"]
  res = {**sweep["resources"], **(resources or {})}
  workdir = os.path.abspath(workdir)
  os.makedirs(workdir, exist_ok=True)
  storage = storage or os.path.dirname(workdir)
  name = os.path.basename(workdir) + "_tune" if storage == os.path.dirname(workdir) else os.path.basename(workdir)
  os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no usage reports from a research run
  if not ray.is_initialized():
    env = trial_env(res["cpu"], res["gpu"])
    kwargs = (
      {"address": address}
      if address
      else {"num_cpus": os.cpu_count(), "include_dashboard": False, "object_store_memory": 256 << 20}
    )
    ray.init(runtime_env={"env_vars": env}, log_to_driver=False, **kwargs)
  trainable = tune.with_resources(
    tune.with_parameters(run_trial, config_arg=_absolute(sweep["config"]), sweep_dir=workdir, extra={}),
    {"cpu": res["cpu"], "gpu": res["gpu"]},
  )
  path = os.path.join(storage, name)
  if tune.Tuner.can_restore(path):
    log(f"resuming the sweep in {path}")
    tuner = tune.Tuner.restore(path, trainable, resume_unfinished=True, restart_errored=retry_failed)
  else:
    tuner = tune.Tuner(
      trainable,
      param_space=_param_space(sweep, seeds),
      tune_config=_tune_config(sweep, seeds, max_concurrent),
      run_config=tune.RunConfig(
        name=name,
        storage_path=storage,
        failure_config=tune.FailureConfig(max_failures=0, fail_fast=False),
        checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
        verbose=1,
      ),
    )
  results = tuner.fit()
  rows = [_row(r, workdir) for r in results]
  write_summary(
    rows, workdir, evaluate_winner=evaluate_winner, config_arg=sweep["config"], log=log, baseline=sweep["baseline"]
  )
  return rows


def _absolute(config_arg: str) -> str:
  """The config argument with an absolute file path (Tune runs trials in their own directories)."""
  path, sep, preset = config_arg.partition(":")
  return os.path.abspath(path) + sep + preset


def _param_space(sweep: dict, seeds: int) -> dict:
  from ray import tune  # pylint: disable=g-import-not-at-top

  if sweep["search"] == "optuna":
    return {"overrides": tune_space(sweep["space"])}
  trials = plan(sweep, seeds)
  return {"trial": tune.grid_search([{"overrides": m, "seed": s} for m, s in trials])}


def _tune_config(sweep: dict, seeds: int, max_concurrent: int):
  from ray import tune  # pylint: disable=g-import-not-at-top
  from ray.tune import schedulers  # pylint: disable=g-import-not-at-top

  scheduler = {
    None: None,
    "asha": lambda: schedulers.ASHAScheduler(time_attr="epoch", grace_period=1, reduction_factor=2),
    "median": lambda: schedulers.MedianStoppingRule(time_attr="epoch", grace_period=1),
  }[sweep["scheduler"]]
  search_alg, num_samples = None, 1
  if sweep["search"] == "optuna":
    from ray.tune.search import Repeater  # pylint: disable=g-import-not-at-top
    from ray.tune.search.optuna import OptunaSearch  # pylint: disable=g-import-not-at-top

    search_alg = Repeater(OptunaSearch(seed=0), repeat=seeds, set_index=True)
    num_samples = sweep["num_samples"] * seeds
  return tune.TuneConfig(
    metric=METRIC,
    mode="max",
    scheduler=scheduler() if scheduler else None,
    search_alg=search_alg,
    num_samples=num_samples,
    max_concurrent_trials=max_concurrent or None,
  )


def _row(result, workdir: str) -> dict:
  """One trial's record: overrides, seed, state, validation curve, error."""
  from siamese_jax import metrics  # pylint: disable=g-import-not-at-top

  overrides, seed = _trial_of(result.config or {})
  wd = os.path.join(workdir, "trials", trial_name(overrides, seed))
  curve = [r[METRIC] for r in metrics.read_metrics(wd) if METRIC in r]
  if result.error is not None:
    state, error = "failed", str(result.error).strip().splitlines()[-1][:300]
  elif os.path.exists(os.path.join(wd, DONE_FILE)):
    state, error = "finished", ""
  else:
    state, error = "stopped early", ""
  return {
    "trial": os.path.basename(wd),
    "workdir": wd,
    "overrides": overrides,
    "seed": seed,
    "state": state,
    "epochs": len(curve),
    "best_val": max(curve) if curve else float("nan"),
    "curve": curve,
    "error": error,
    "eval": dict(result.metrics or {}) if overrides.get("_mode") == "eval" else None,
  }


def rank(rows: list[dict], baseline: dict | None = None) -> list[dict]:
  """Configurations ranked by mean best validation accuracy over their seeds (trials with a curve);
  with a `baseline` (its overrides), each one's gain over it paired by seed (the seeds both have),
  the baseline's seed spread (sd) and the verdict."""
  from siamese_jax import selection  # pylint: disable=g-import-not-at-top

  groups: dict[str, list[dict]] = {}
  for r in rows:
    if r["curve"] and not r["overrides"].get("_mode"):
      groups.setdefault(json.dumps(r["overrides"], sort_keys=True), []).append(r)
  out = []
  for key, rs in groups.items():
    vals = [r["best_val"] for r in rs]
    out.append(
      {
        "overrides": json.loads(key),
        "mean_val": statistics.fmean(vals),
        "sd_val": statistics.stdev(vals) if len(vals) > 1 else float("nan"),
        "seeds": len(vals),
        "finished": sum(r["state"] == "finished" for r in rs),
        "trials": rs,
      }
    )
  ref = next((g for g in out if baseline is not None and g["overrides"] == baseline), None)
  for g in out:
    g["gain"], g["gain_sd"], g["spread"], g["verdict"] = float("nan"), float("nan"), float("nan"), ""
    if ref is None or g is ref:
      continue
    c = selection.against_baseline(
      {r["seed"]: r["best_val"] for r in g["trials"]}, {r["seed"]: r["best_val"] for r in ref["trials"]}
    )
    if c is not None:
      g["gain"], g["gain_sd"], g["spread"] = c["gain"], c["gain_sd"], c["spread"]
      g["verdict"] = f"{c['verdict']} ({c['seeds']} seeds)"
  return sorted(out, key=lambda g: -g["mean_val"])


def write_summary(
  rows: list[dict],
  workdir: str,
  evaluate_winner: bool = True,
  config_arg: str = "",
  log=print,
  baseline: dict | None = None,
) -> None:
  """sweep_results.{md,csv} and sweep_validation.png (validation only); sweep_test.md for the winner."""
  ranked = rank(rows, baseline)
  lines = [
    "# Sweep results: ranked by validation only",
    "",
    f"Mean best-epoch validation accuracy over seeds ({_protocol(rows)}).",
  ]
  if baseline is not None:
    lines.append(
      f"Gain: over the baseline `{_show(baseline)}`, paired by seed (mean ± sd); a verdict counts when the mean"
      " gain exceeds the baseline's seed spread."
    )
  lines += [
    "",
    "| rank | overrides | validation % mean | sd | seeds | finished | gain | verdict |",
    "| ---: | --- | ---: | ---: | ---: | ---: | ---: | --- |",
  ]
  for i, g in enumerate(ranked, 1):
    gain = "baseline" if g["overrides"] == baseline else ""
    gain = f"{g['gain']:+.2f} ± {g['gain_sd']:.2f}" if g["verdict"] else gain
    verdict = f"{g['verdict']}, spread {g['spread']:.2f}" if g["verdict"] else ""
    lines.append(
      f"| {i} | `{_show(g['overrides'])}` | {g['mean_val']:.2f} | {g['sd_val']:.2f} | {g['seeds']} | {g['finished']}"
      f" | {gain} | {verdict} |"
    )
  lines += ["", "| trial | state | epochs | best validation % | error |", "| --- | --- | ---: | ---: | --- |"]
  for r in sorted(rows, key=lambda r: r["trial"]):
    lines.append(f"| {r['trial']} | {r['state']} | {r['epochs']} | {r['best_val']:.2f} | {r['error']} |")
  evals = [r for r in rows if r["eval"]]
  if evals:
    keys = sorted({k for r in evals for k in r["eval"] if k.endswith("shot") or k == "lake_accuracy"})
    lines += [
      "",
      "Evaluation-only members (trained workdirs, no choice made):",
      "",
      "| trial | " + " | ".join(keys) + " |",
      "| --- |" + " ---: |" * len(keys),
    ]
    lines += [
      f"| {r['trial']} | " + " | ".join(f"{r['eval'].get(k, float('nan')):.2f}" for k in keys) + " |" for r in evals
    ]
  with workdir_lib.atomic_file(os.path.join(workdir, "sweep_results.md")) as f:
    f.write("\n".join(lines) + "\n")
  with workdir_lib.atomic_file(os.path.join(workdir, "sweep_results.csv")) as f:
    w = csv.writer(f)
    w.writerow(["trial", "overrides", "seed", "state", "epochs", "best_val", "error"])
    for r in rows:
      w.writerow(
        [
          r["trial"],
          json.dumps(r["overrides"], sort_keys=True),
          r["seed"],
          r["state"],
          r["epochs"],
          f"{r['best_val']:.4f}",
          r["error"],
        ]
      )
  _plot_curves(rows, os.path.join(workdir, "sweep_validation.png"))
  log("\n".join(lines))
  if ranked and evaluate_winner:
    _evaluate_winner(ranked[0], workdir, log)


def _protocol(rows: list[dict]) -> str:
  """The validation protocol the trials recorded (their config.json), e.g. "within_alphabet"."""
  found = set()
  for r in rows:
    try:
      found.add(workdir_lib.read_config(r["workdir"]).validation.protocol)
    except (OSError, ValueError):
      continue
  return "validation.protocol: " + (", ".join(sorted(found)) or "unknown")


def _show(overrides: dict) -> str:
  return ", ".join(f"{k}={_format(v)}" for k, v in sorted(overrides.items())) or "(preset)"


def _plot_curves(rows: list[dict], path: str) -> None:
  plt = figures.pyplot()

  fig, ax = plt.subplots(figsize=(7, 4))
  for r in rows:
    if r["curve"]:
      ax.plot(range(1, len(r["curve"]) + 1), r["curve"], marker=".", label=r["trial"][:40])
  ax.set_xlabel("epoch")
  ax.set_ylabel("validation accuracy (%)")
  ax.set_title("validation accuracy per trial")
  ax.grid(alpha=0.3)
  if len(rows) <= 12:
    ax.legend(fontsize=6)
  fig.tight_layout()
  figures.save(fig, path)
  plt.close(fig)


def _evaluate_winner(group: dict, workdir: str, log) -> None:
  """Evaluates the chosen configuration's trials on the test protocols, into sweep_test.md."""
  from siamese_jax import evaluate  # pylint: disable=g-import-not-at-top
  from siamese_jax import workdir as workdir_lib

  lines = [
    "# Test metrics of the chosen configuration",
    "",
    "These were computed after the choice, for the configuration ranked first by validation in",
    "sweep_results.md; they played no part in choosing it.",
    "",
    f"Configuration: `{_show(group['overrides'])}`",
    "",
    "| trial | metric | accuracy % |",
    "| --- | --- | ---: |",
  ]
  for r in group["trials"]:
    if r["state"] == "failed":
      continue
    config = workdir_lib.read_config(r["workdir"])
    results = evaluate.evaluate_workdir(config, r["workdir"])
    lines += [
      f"| {r['trial']} | {k} | {v:.2f} |"
      for k, v in _eval_figures(results).items()
      if k.startswith(("lake", "episodes")) or "_20way_" in k
    ]
  with workdir_lib.atomic_file(os.path.join(workdir, "sweep_test.md")) as f:
    f.write("\n".join(lines) + "\n")
  log("\n".join(lines))


# --- command line --------------------------------------------------------------------------------------


def main(argv):
  del argv
  if not FLAGS.sweep or not FLAGS.workdir:
    raise app.UsageError("usage: python -m siamese_jax.sweep --sweep=FILE --workdir=DIR")
  resources = {k: v for k, v in (("cpu", FLAGS.cpus_per_trial), ("gpu", FLAGS.gpus_per_trial)) if v is not None}
  try:
    if FLAGS.dry_run:
      sweep = load_sweep(FLAGS.sweep)
      res = {**sweep["resources"], **resources}
      trials = plan(sweep, FLAGS.seeds or sweep["seeds"])
      if trials is None:
        print(
          f"optuna search over {sweep['space']}: {sweep['num_samples']} samples x {FLAGS.seeds or sweep['seeds']}"
          f" seeds, each {res}"
        )
      for overrides, seed in trials or []:
        print(f"{trial_name(overrides, seed)}  {sweep['config']}  {_show(overrides)}  seed={seed}  resources={res}")
      return
    rows = run_sweep(
      FLAGS.sweep,
      FLAGS.workdir,
      FLAGS.seeds,
      resources,
      FLAGS.address,
      FLAGS.storage,
      FLAGS.max_concurrent,
      FLAGS.retry_failed,
      FLAGS.evaluate_winner,
    )
  except SweepError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)
  failed = [r for r in rows if r["state"] == "failed"]
  print(
    f"{len(rows)} trials: {len(rows) - len(failed)} ran, {len(failed)} failed; see {FLAGS.workdir}/sweep_results.md"
  )


def define_flags() -> None:
  """The command line's flags (defined only when run as a program: sweep files import this module)."""
  flags.DEFINE_string("sweep", None, "A sweep file (see experiments/).")
  flags.DEFINE_string("workdir", None, "The sweep's directory: trials/<name>/ per trial, the summary files.")
  flags.DEFINE_string("address", None, "A Ray cluster: 'auto' or HOST:PORT; default: Ray in this process.")
  flags.DEFINE_string(
    "storage", None, "Tune's experiment storage (a path or URI every node sees; default: beside --workdir)."
  )
  flags.DEFINE_integer("seeds", None, "Seeds per configuration (default: the sweep file's SEEDS, else 1).")
  flags.DEFINE_float("cpus_per_trial", None, "CPUs per trial (default: the sweep file's RESOURCES, else 1).")
  flags.DEFINE_float("gpus_per_trial", None, "GPUs per trial; a fraction packs several trials on one GPU.")
  flags.DEFINE_integer("max_concurrent", 0, "At most this many trials at once (0: as resources allow).")
  flags.DEFINE_bool("retry_failed", False, "On a rerun, run failed trials again.")
  flags.DEFINE_bool("evaluate_winner", True, "Evaluate the chosen configuration on the test protocols.")
  flags.DEFINE_bool("dry_run", False, "Print the trials and their resources, run nothing.")


if __name__ == "__main__":
  define_flags()
  app.run(main)
