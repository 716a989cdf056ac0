"""Headline figures over seeds: Lake's 20 official runs and the fresh Lake-format runs, per workdir
(one per seed) and as mean +- sd, for every scorer in their `eval.json`, plus the validation's best.

  python -m siamese_jax.tools.seed_table runs/cpu_s0 runs/cpu_s1 runs/cpu_s2
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np

from siamese_jax import workdir as workdir_lib  # noqa: E402


def figures(workdir: str) -> dict[str, dict[str, float]]:
  """{scorer: {"lake": %, "fresh": %}} from a workdir's eval.json, and {"validation": {"best": %}}."""
  ev = workdir_lib.read_eval(workdir)
  if ev is None:
    raise SystemExit(f"{workdir} has no {workdir_lib.EVAL_FILE}: run --mode=eval on it first")
  out = {}
  for name, r in ev.get("lake_runs", {}).get("results", {}).items():
    out.setdefault(name, {})["lake"] = r["accuracy"]
  for name, r in ev.get("fresh_lake_runs", {}).items():
    if r.get("total"):
      out.setdefault(name, {})["fresh"] = r["accuracy"]
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    val = [json.loads(line).get("val_one_shot") for line in f]
  out["validation"] = {"best": max(v for v in val if v is not None)}
  return out


def table(workdirs: list[str]) -> str:
  """Markdown: one row per scorer and figure; a column per workdir, then mean +- sd."""
  per = [figures(w) for w in workdirs]
  lines = [
    f"| scorer | figure | {' | '.join(os.path.basename(w.rstrip('/')) for w in workdirs)} | mean +- sd |",
    "|---" * (len(workdirs) + 3) + "|",
  ]
  for name in dict.fromkeys(k for p in per for k in p):
    for fig in ("lake", "fresh", "best"):
      xs = [p.get(name, {}).get(fig) for p in per]
      if any(x is None for x in xs):
        continue
      sd = np.std(xs, ddof=1) if len(xs) > 1 else float("nan")
      cells = " | ".join(f"{x:.2f}" for x in xs)
      lines.append(f"| {name} | {fig} | {cells} | {np.mean(xs):.2f} +- {sd:.2f} |")
  return "\n".join(lines)


if __name__ == "__main__":
  if len(sys.argv) < 2:
    sys.exit("usage: python -m siamese_jax.tools.seed_table WORKDIR [WORKDIR ...]")
  print(table(sys.argv[1:]))
