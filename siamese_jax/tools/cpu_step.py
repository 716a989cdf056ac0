"""The `:cpu` preset's real train step and per-epoch validation, timed; optionally for several
source trees interleaved in one run (e.g. the code before and after a speed change).

Each measurement is a fresh `python` process importing siamese_jax from its tree, with
the real Omniglot: the preset's own step (all pairs of 32 characters x 4 drawers,
distortions, on-device sampling) as train.py runs it, the median of `--repeats` blocks
of `--steps` steps after two warm-up steps, and validation as train.py runs it at each
epoch's end (the median of 3 after one warm-up), with its share of an epoch.

  python -m siamese_jax.tools.cpu_step --manual_dir=../shared/omniglot [--trees=OLD_TREE,. --rounds=3]
  python -m siamese_jax.tools.cpu_step --manual_dir=../shared/omniglot --xla_flags=';--xla_cpu_use_xnnpack=false'

`--xla_flags` gives settings of $XLA_FLAGS (";"-separated, "" = none) that are timed as variants of each tree.

Prints a table of the medians over rounds; `measure` is what `bench_train.py --sections=preset` calls.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the repository


def child(tree: str, manual_dir: str | None, data_dir: str | None, repeats: int, steps: int) -> dict:
  """Runs inside the measuring process (siamese_jax imported from `tree`, first on its PYTHONPATH)."""
  from siamese_jax import host

  host.tune_allocator()
  import jax

  from configs import koch
  from siamese_jax import input_pipeline, sharding, train

  c = koch.get_config("cpu")
  c.data.manual_dir, c.data.data_dir = manual_dir, data_dir
  chars = input_pipeline.training_characters(c.data, c.model.image_size, c.augment.class_rotations)
  val_chars = input_pipeline.held_out_characters(c.validation, c.data, c.model.image_size)
  state, optimizer = train.create_train_state(jax.random.PRNGKey(0), c)
  mesh = sharding.make_mesh()  # as train.py: every device (several CPU devices only with XLA_FLAGS saying so)
  data = sharding.replicate(train.make_data(c, chars), mesh)
  state = sharding.replicate(state, mesh)
  step = train.make_train_step(c, optimizer, mesh)
  for _ in range(2):
    state, out = step(state, data)
  jax.block_until_ready(out["loss"])
  step_s = []
  for _ in range(repeats):
    t = time.perf_counter()
    for _ in range(steps):
      state, out = step(state, data)
    jax.block_until_ready(out["loss"])
    step_s.append((time.perf_counter() - t) / steps)
  train.validation_metrics(c, state.params, val_chars)  # compiles
  val_s = []
  for _ in range(3):
    t = time.perf_counter()
    train.validation_metrics(c, state.params, val_chars)
    val_s.append(time.perf_counter() - t)
  step_median, val_median = statistics.median(step_s), statistics.median(val_s)
  epoch_s = c.train.steps_per_epoch * step_median + val_median
  return {
    "tree": tree,
    "devices": mesh.size,
    "step_s": step_s,
    "median_step_s": step_median,
    "pairs_per_s": input_pipeline.pairs_per_step(c.train) / step_median,
    "val_s": val_s,
    "median_val_s": val_median,
    "val_tasks": c.validation.num_tasks,
    "val_share_of_epoch": val_median / epoch_s,
  }


def measure(tree: str, manual_dir=None, data_dir=None, repeats: int = 5, steps: int = 10, xla_flags: str = "") -> dict:
  """`child` in a fresh process, with $XLA_FLAGS = `xla_flags` where given (else the caller's);
  its result (or {"tree", "error"})."""
  args = [sys.executable, os.path.abspath(__file__), "--child", f"--tree={tree}", f"--repeats={repeats}"]
  args += [f"--steps={steps}"] + ([f"--manual_dir={manual_dir}"] if manual_dir else [])
  args += [f"--data_dir={data_dir}"] if data_dir else []
  env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.path.abspath(tree), os.environ.get("PYTHONPATH", "")])}
  if xla_flags:
    env["XLA_FLAGS"] = xla_flags
  proc = subprocess.run(args, capture_output=True, text=True, cwd=os.path.abspath(tree), env=env)
  lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
  return json.loads(lines[-1]) if lines else {"tree": tree, "error": proc.stderr.strip().splitlines()[-1:]}


def interleaved(
  trees, rounds: int, manual_dir=None, data_dir=None, repeats: int = 5, steps: int = 10, log=print, xla_flags=("",)
):
  """`measure` for every tree and $XLA_FLAGS setting, round by round (so drift in the machine hits
  all alike); {tree: [result per round]}, or {(tree, flags): ...} when several settings are given."""
  keys = list(trees) if list(xla_flags) == [""] else [(t, x) for t in trees for x in xla_flags]
  results = {k: [] for k in keys}
  for r in range(rounds):
    for k in keys:
      t, x = (k, "") if isinstance(k, str) else k
      res = measure(t, manual_dir, data_dir, repeats, steps, x)
      results[k].append(res)
      log(f"round {r + 1} {k}: " + (f"{res['median_step_s'] * 1000:.0f} ms/step" if "error" not in res else str(res)))
  return results


def main(argv) -> None:
  del argv
  f = FLAGS
  if f.child:
    print(json.dumps(child(f.tree, f.manual_dir, f.data_dir, f.repeats, f.steps)))
    return
  trees = [os.path.abspath(t) for t in f.trees]
  xla_flags = f.xla_flags.split(";")
  print(table(interleaved(trees, f.rounds, f.manual_dir, f.data_dir, f.repeats, f.steps, xla_flags=xla_flags)))


def _label(tree: str) -> str:
  """The tree's path and commit (with "+" when it has uncommitted changes)."""
  git = ["git", "-C", tree]
  head = subprocess.run(git + ["rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
  dirty = subprocess.run(git + ["status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True)
  name = "this tree" if os.path.abspath(tree) == ROOT else tree
  return f"{name} ({head or '?'}{'+' if dirty.stdout.strip() else ''})"


def table(results: dict) -> str:
  """Markdown: per tree, the medians over rounds of step time, pairs/s, validation seconds and
  share, and the pairs/s against the first tree's."""
  lines = [
    "| tree | rounds | ms/step | pairs/s | x first tree | validation tasks | validation s | share of an epoch |",
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
  ]
  first = None
  for k, rs in results.items():
    t, xla_flags = (k, "") if isinstance(k, str) else k
    ok = [r for r in rs if "error" not in r]
    if ok:
      m = {f: statistics.median(r[f] for r in ok) for f in ("median_step_s", "pairs_per_s", "median_val_s")}
      share = statistics.median(r["val_share_of_epoch"] for r in ok)
      first = first or m["pairs_per_s"]
      name = _label(t) + (f" XLA_FLAGS={xla_flags!r}" if xla_flags else "")
      lines.append(
        f"| {name} | {len(ok)} | {1000 * m['median_step_s']:.0f} | {m['pairs_per_s']:.0f} |"
        f" {m['pairs_per_s'] / first:.2f} | {ok[0]['val_tasks']} | {m['median_val_s']:.2f} | {100 * share:.1f}% |"
      )
  return "\n".join(lines)


if __name__ == "__main__":
  from absl import app, flags

  flags.DEFINE_list("trees", [ROOT], "Source trees to time, interleaved round by round.")
  flags.DEFINE_integer("rounds", 1, "Rounds over the trees.")
  flags.DEFINE_string("xla_flags", "", "';'-separated $XLA_FLAGS settings timed as variants of each tree ('' = none).")
  flags.DEFINE_integer("repeats", 5, "Timed blocks of steps per measurement; the median is reported.")
  flags.DEFINE_integer("steps", 10, "Steps per timed block.")
  flags.DEFINE_string("manual_dir", None, "Folder with the Omniglot zips.")
  flags.DEFINE_string("data_dir", None, "tfds data dir.")
  flags.DEFINE_bool("child", False, "Internal: measure in this process.")
  flags.DEFINE_string("tree", ROOT, "Internal: the tree of a child.")
  FLAGS = flags.FLAGS
  app.run(main)
