"""Headline figures over seeds: Lake's 20 official runs, the fresh Lake-format runs and the few-shot
episodes' cells, per workdir (one per seed) and as mean +- sd, for every scorer in their `eval.json`,
plus the validation's best and the training's minutes.

  python -m siamese_jax.tools.seed_table runs/cpu_s0 runs/cpu_s1 runs/cpu_s2
  python -m siamese_jax.tools.seed_table --ways=5,20 runs/folder_s0 ...   # and N-way 1-shot rows
  python -m siamese_jax.tools.seed_table --baseline=bce runs/objectives/*_s[0-9]

With `--baseline=NAME`, workdirs named `<recipe>_s<seed>` are grouped by recipe: a column per recipe
(mean +- sd over its seeds) and each one's gain over NAME paired by seed, with the verdict against
NAME's seed spread (`selection.paired_gain`, `selection.verdict`).
"""

from __future__ import annotations

import os
import re
import sys

import numpy as np

from siamese_jax import metrics, selection
from siamese_jax import workdir as workdir_lib  # noqa: E402


def figures(workdir: str, ways: tuple[int, ...] = ()) -> dict[str, dict[str, float]]:
  """{scorer: {"lake": %, "fresh": %, "<protocol> <N>-way": % for N in `ways`, "<N>-way <K>-shot": %
  per episode cell}} from a workdir's eval.json (1-shot tasks on the evaluation set), and
  {"validation": {"best": %, "training minutes": min}}."""
  ev = workdir_lib.read_eval(workdir)
  if ev is None:
    raise SystemExit(f"{workdir} has no {workdir_lib.EVAL_FILE}: run --mode=eval on it first")
  out = {}
  for name, r in ev.get("lake_runs", {}).get("results", {}).items():
    out.setdefault(name, {})["lake"] = r["accuracy"]
  for name, r in ev.get("fresh_lake_runs", {}).items():
    if r.get("total"):
      out.setdefault(name, {})["fresh"] = r["accuracy"]
  for r in ev.get("one_shot", []):
    if r["set"] == "evaluation" and r["n_way"] in ways and r["shots"] == 1 and r["total"]:
      out.setdefault(r["scorer"], {})[f"{r['protocol']} {r['n_way']}-way"] = r["accuracy"]
  for r in ev.get("episodes", []):
    out.setdefault(r["scorer"], {})[f"{r['n_way']}-way {r['shots']}-shot"] = r["accuracy"]
  rows = metrics.read_metrics(workdir)
  out["validation"] = {"best": max(r["val_one_shot"] for r in rows if r.get("val_one_shot") is not None)}
  trained = [r["elapsed_s"] for r in rows if "loss" in r and "elapsed_s" in r]
  if trained:
    out["validation"]["training minutes"] = trained[-1] / 60
  return out


def table(workdirs: list[str], ways: tuple[int, ...] = ()) -> str:
  """Markdown: one row per scorer and figure; a column per workdir, then mean +- sd."""
  per = [figures(w, ways) for w in workdirs]
  lines = [
    f"| scorer | figure | {' | '.join(os.path.basename(w.rstrip('/')) for w in workdirs)} | mean +- sd |",
    "|---" * (len(workdirs) + 3) + "|",
  ]
  for name in dict.fromkeys(k for p in per for k in p):
    for fig in dict.fromkeys(f for p in per for f in p.get(name, {})):
      xs = [p.get(name, {}).get(fig) for p in per]
      if any(x is None for x in xs):
        continue
      cells = " | ".join(f"{x:.2f}" for x in xs)
      lines.append(f"| {name} | {fig} | {cells} | {np.mean(xs):.2f} +- {selection.sd(xs):.2f} |")
  return "\n".join(lines)


def compare(workdirs: list[str], baseline: str, ways: tuple[int, ...] = ()) -> str:
  """Markdown: one row per scorer and figure; a column per recipe (workdirs `<recipe>_s<seed>`) with
  its mean +- sd over seeds and, beside the baseline, its gain paired by seed and the verdict (not for
  the training minutes, a cost)."""
  groups: dict[str, dict[int, dict]] = {}
  for w in workdirs:
    m = re.fullmatch(r"(.+)_s(\d+)", os.path.basename(w.rstrip("/")))
    if m is None:
      raise SystemExit(f"{w}: --baseline needs workdirs named <recipe>_s<seed>")
    groups.setdefault(m.group(1), {})[int(m.group(2))] = figures(w, ways)
  if baseline not in groups:
    raise SystemExit(f"no workdir of the baseline {baseline!r} among {sorted(groups)}")
  base = groups[baseline]
  lines = [f"| scorer | figure | {' | '.join(groups)} |", "|---" * (len(groups) + 2) + "|"]
  for name in dict.fromkeys(k for g in groups.values() for p in g.values() for k in p):
    for fig in dict.fromkeys(f for g in groups.values() for p in g.values() for f in p.get(name, {})):
      ref = {s: p[name][fig] for s, p in base.items() if fig in p.get(name, {})}
      cells = []
      for recipe, per_seed in groups.items():
        xs = {s: p[name][fig] for s, p in per_seed.items() if fig in p.get(name, {})}
        if not xs:
          cells.append("")
          continue
        cell = f"{np.mean(list(xs.values())):.2f} +- {selection.sd(list(xs.values())):.2f}"
        c = selection.against_baseline(xs, ref) if recipe != baseline else None
        if c is not None and fig != "training minutes":  # a cost, not a score
          cell += f"; {c['gain']:+.2f} +- {c['gain_sd']:.2f}, {c['verdict']}"
        cells.append(cell)
      lines.append(f"| {name} | {fig} | {' | '.join(cells)} |")
  return "\n".join(lines)


if __name__ == "__main__":
  args = sys.argv[1:]
  ways, baseline = (), None
  while args and args[0].startswith(("--ways=", "--baseline=")):
    key, value = args.pop(0)[2:].split("=", 1)
    if key == "ways":
      ways = tuple(int(n) for n in value.split(","))
    else:
      baseline = value
  if not args:
    sys.exit("usage: python -m siamese_jax.tools.seed_table [--ways=5,20] [--baseline=RECIPE] WORKDIR [WORKDIR ...]")
  print(compare(args, baseline, ways) if baseline else table(args, ways))
