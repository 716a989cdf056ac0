"""Config sweeps: `python -m siamese_jax.sweep --sweep=experiments/koch_table1.py --workdir=runs/table1`.

A sweep file defines `CONFIG` (a config file argument, e.g. "configs/koch.py:cpu")
and `get_sweep()` returning a list of members, each a dict of config overrides
{"train.fixed_pairs": 30000, ...} (`grid` builds a product). Keys starting with
"_" are not config keys: "_mode" ("train_and_eval" or "eval") and "_from" (a
trained workdir whose config and parameters an eval member evaluates).

Every member runs `python -m siamese_jax.main` in its own sub-workdir, so a
failing member is recorded and the others go on; rerunning skips finished
members and resumes interrupted ones. `--dry_run` prints the commands (one per
member, for a cluster's job array); `--only=K` runs member K. At the end the
members' eval.json files are aggregated into sweep_results.{md,csv} and
sweep_lake.png in the sweep workdir.
"""

from __future__ import annotations

import csv
import importlib.util
import itertools
import json
import os
import re
import shlex
import subprocess
import sys
from typing import Any

from absl import app
from absl import flags

FLAGS = flags.FLAGS

STATUS_FILE = "sweep_status.json"


def grid(axes: dict[str, list]) -> list[dict[str, Any]]:
  """The product of the value lists: grid({"a": [1, 2], "b": [3]}) -> [{a:1,b:3}, {a:2,b:3}]."""
  keys = list(axes)
  return [dict(zip(keys, values)) for values in itertools.product(*(axes[k] for k in keys))]


def load_sweep(path: str) -> tuple[str, list[dict[str, Any]]]:
  """(config argument, members) from a sweep file."""
  if not os.path.exists(path):
    raise FileNotFoundError(f"no sweep file {path}")
  spec = importlib.util.spec_from_file_location("sweep_file", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  if not hasattr(module, "CONFIG") or not hasattr(module, "get_sweep"):
    raise ValueError(f"{path} must define CONFIG and get_sweep()")
  members = list(module.get_sweep())
  if not members:
    raise ValueError(f"{path}: get_sweep() returned no members")
  return module.CONFIG, members


def member_name(index: int, member: dict[str, Any]) -> str:
  """A directory-safe name: '<index>_<key>=<value>_...' from the overrides."""
  parts = [f"{k.split('.')[-1]}={_format(v)}" for k, v in member.items() if not k.startswith("_")]
  slug = re.sub(r"[^A-Za-z0-9=.,_-]+", "", "_".join(parts))[:80]
  return f"{index:03d}_{slug}" if slug else f"{index:03d}"


def _format(value) -> str:
  if isinstance(value, (list, tuple)):
    return "(" + ",".join(_format(v) for v in value) + ("," if len(value) == 1 else "") + ")"
  return str(value)


def member_command(config: str, member: dict[str, Any], workdir: str, extra=()) -> list[str]:
  """The `python -m siamese_jax.main` command line of one member."""
  cmd = [sys.executable, "-m", "siamese_jax.main", f"--config={config}", f"--workdir={workdir}"]
  if member.get("_mode"):
    cmd.append(f"--mode={member['_mode']}")
  cmd += [f"--config.{k}={_format(v)}" for k, v in member.items() if not k.startswith("_")]
  return cmd + list(extra)


def _prepare_eval_member(member: dict[str, Any], workdir: str) -> None:
  """For an eval member with "_from": links the source's config and checkpoints into workdir."""
  src = member.get("_from")
  if not src:
    return
  os.makedirs(workdir, exist_ok=True)
  for name in ("config.json", "best", "checkpoints"):
    s, d = os.path.abspath(os.path.join(src, name)), os.path.join(workdir, name)
    if os.path.exists(s) and not os.path.lexists(d):
      os.symlink(s, d)


def _read_status(workdir: str) -> dict:
  path = os.path.join(workdir, STATUS_FILE)
  return json.load(open(path)) if os.path.exists(path) else {}


def _write_status(workdir: str, status: dict) -> None:
  tmp = os.path.join(workdir, STATUS_FILE + ".tmp")
  with open(tmp, "w") as f:
    json.dump(status, f, indent=1)
  os.replace(tmp, os.path.join(workdir, STATUS_FILE))


def run_sweep(sweep_file: str, workdir: str, only: int | None = None, extra=(), log=print) -> dict:
  """Runs (or skips, or resumes) every member; returns the status per member name."""
  config, members = load_sweep(sweep_file)
  os.makedirs(workdir, exist_ok=True)
  status = _read_status(workdir)
  indices = range(len(members)) if only is None else [only]
  for i in indices:
    if not 0 <= i < len(members):
      raise ValueError(f"--only={i}: the sweep has members 0..{len(members) - 1}")
    name = member_name(i, members[i])
    mdir = os.path.join(workdir, name)
    if os.path.exists(os.path.join(mdir, "eval.json")):
      log(f"[{i}] {name}: finished, skipped")
      status[name] = {**status.get(name, {}), "state": "finished"}
      continue
    _prepare_eval_member(members[i], mdir)
    cmd = member_command(config, members[i], mdir, extra)
    log(f"[{i}] {name}: running {shlex.join(cmd[1:])}")
    status[name] = {"state": "running", "overrides": members[i], "command": shlex.join(cmd)}
    _write_status(workdir, status)
    os.makedirs(mdir, exist_ok=True)
    with open(os.path.join(mdir, "log.txt"), "a") as logf:
      proc = subprocess.run(cmd, stdout=logf, stderr=subprocess.PIPE, text=True)
      logf.write(proc.stderr)
    if proc.returncode == 0:
      status[name]["state"] = "finished"
    else:
      errors = [line for line in proc.stderr.splitlines() if line.startswith(("error:", "interrupted:"))]
      status[name].update(state="failed", returncode=proc.returncode,
                          error=errors[-1] if errors else proc.stderr.strip()[-2000:])
      log(f"[{i}] {name}: FAILED ({status[name]['error']})")
    _write_status(workdir, status)
  aggregate(workdir, members)
  return status


def member_row(index: int, name: str, member: dict, result: dict | None) -> dict:
  """One table row: the overrides and the headline numbers of a member's eval.json."""
  row = {"member": index, "name": name,
         "overrides": " ".join(f"{k}={_format(v)}" for k, v in member.items())}
  if result is None:
    return row
  lake = result.get("lake_runs", {}).get("results", {}).get("model")
  if lake:
    row.update(lake_accuracy=round(lake["accuracy"], 2), lake_ci_lo=round(lake["ci95"][0], 2),
               lake_ci_hi=round(lake["ci95"][1], 2))
  for r in result.get("one_shot", []):
    if (r["set"], r["scorer"], r["protocol"], r["n_way"]) == ("evaluation", "model", "within_alphabet", 20):
      row["within20_accuracy"] = round(r["accuracy"], 2) if r["num_tasks"] else None
  ver = result.get("verification", {}).get("fixed")
  if ver:
    row["verification_accuracy"] = round(ver["accuracy"], 2)
  return row


def aggregate(workdir: str, members: list[dict]) -> list[dict]:
  """Writes sweep_results.md / .csv and sweep_lake.png from the members' eval.json files."""
  status = _read_status(workdir)
  rows = []
  for i, m in enumerate(members):
    name = member_name(i, m)
    path = os.path.join(workdir, name, "eval.json")
    row = member_row(i, name, m, json.load(open(path)) if os.path.exists(path) else None)
    row["state"] = status.get(name, {}).get("state", "not run")
    if row["state"] == "failed":
      row["error"] = status[name].get("error", "")
    rows.append(row)
  cols = ["member", "name", "state", "lake_accuracy", "lake_ci_lo", "lake_ci_hi", "within20_accuracy",
          "verification_accuracy", "overrides", "error"]
  with open(os.path.join(workdir, "sweep_results.csv"), "w", newline="") as f:
    w = csv.DictWriter(f, fieldnames=cols, extrasaction="ignore")
    w.writeheader()
    w.writerows(rows)
  with open(os.path.join(workdir, "sweep_results.md"), "w") as f:
    f.write("| " + " | ".join(cols) + " |\n|" + "---|" * len(cols) + "\n")
    for r in rows:
      f.write("| " + " | ".join(str(r.get(c, "")) for c in cols) + " |\n")
  _plot(rows, os.path.join(workdir, "sweep_lake.png"))
  return rows


def _plot(rows: list[dict], path: str) -> None:
  import matplotlib  # pylint: disable=g-import-not-at-top

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top

  done = [r for r in rows if "lake_accuracy" in r]
  fig, ax = plt.subplots(figsize=(max(4, 0.9 * len(rows) + 2), 4))
  if done:
    y = [r["lake_accuracy"] for r in done]
    err = [[max(a - r["lake_ci_lo"], 0) for a, r in zip(y, done)],
           [max(r["lake_ci_hi"] - a, 0) for a, r in zip(y, done)]]
    ax.bar(range(len(done)), y, yerr=err, capsize=4, color="tab:blue")
    ax.set_xticks(range(len(done)), [r["name"] for r in done], rotation=30, ha="right", fontsize=7)
  ax.axhline(5.0, color="k", alpha=0.4, label="chance")
  ax.set_ylabel("Lake 20-way accuracy (%) [95% CI]")
  ax.set_ylim(0, 100)
  ax.set_title(f"{len(done)} of {len(rows)} members finished")
  ax.legend()
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  if not FLAGS.sweep or not FLAGS.workdir:
    raise app.UsageError("--sweep and --workdir are required")
  try:
    config, members = load_sweep(FLAGS.sweep)
    if FLAGS.dry_run:
      for i, m in enumerate(members):
        if FLAGS.only is None or FLAGS.only == i:
          print(shlex.join(member_command(config, m, os.path.join(FLAGS.workdir, member_name(i, m)),
                                          FLAGS.extra)))
      return
    status = run_sweep(FLAGS.sweep, FLAGS.workdir, FLAGS.only, FLAGS.extra)
  except (FileNotFoundError, ValueError) as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)
  failed = [n for n, s in status.items() if s.get("state") == "failed"]
  print(f"sweep: {len(status) - len(failed)} finished, {len(failed)} failed; results in"
        f" {os.path.join(FLAGS.workdir, 'sweep_results.md')}")
  if failed:
    sys.exit(1)


def _define_flags():
  """Defined only when run as a program: sweep files import this module for `grid`."""
  flags.DEFINE_string("sweep", None, "Sweep file, e.g. experiments/koch_table1.py.")
  flags.DEFINE_string("workdir", None, "Sweep workdir; member K runs in <workdir>/<K>_<name>.")
  flags.DEFINE_bool("dry_run", False, "Print one command per member and exit.")
  flags.DEFINE_integer("only", None, "Run only member K (0-based).")
  flags.DEFINE_multi_string("extra", [], "Extra arguments for every member, e.g. --extra=--config.seed=1.")


if __name__ == "__main__":
  _define_flags()
  app.run(main)
