"""Which validation protocol picks the better epoch: every kept checkpoint of each workdir (one per
seed) scored by each protocol of `selection.PROTOCOLS` on the workdir's validation characters, the
epoch each protocol picks (its first best), and that epoch scored by a judge
neither protocol saw: a protocol run on other drawers of the same validation characters, with the
eval's test-time augmentation. Validation only: no test alphabet or Lake run is read.

  python -m siamese_jax.main --config=configs/koch.py:cpu --workdir=runs/protocol/s0 --mode=train \\
      --config.seed=0 --config.train.keep_checkpoints=40          # every epoch's checkpoint kept
  python -m siamese_jax.tools.epoch_picks runs/protocol/s0 runs/protocol/s1 runs/protocol/s2 \\
      --baseline=within_alphabet --out=docs/epoch_picks.png

Each workdir's scores are kept in `<workdir>/epoch_scores.json` as they are made, and reused (epoch by
epoch) when the settings match: a rerun after an interruption, or after more epochs, scores only what is new.
"""

from __future__ import annotations

import copy
import functools
import json
import os

from absl import app, flags
import numpy as np

from siamese_jax import figures, selection
from siamese_jax import workdir as workdir_lib

SCORES_FILE = "epoch_scores.json"


def first_best(values) -> int:
  """Index of the first maximum (a later epoch that only ties does not replace it)."""
  return int(np.argmax(np.asarray(values, float)))


def judge_section(validation, drawers, seed: int):
  """The validation section the judge draws from: other drawers, another task seed."""
  overlap = set(drawers) & set(validation.drawers or ())
  if overlap or not validation.drawers:
    raise selection.ValidationError(
      f"--judge_drawers {sorted(drawers)} must avoid the validation drawers {validation.drawers} "
      "(the judge scores images neither protocol saw)"
    )
  j = copy.deepcopy(validation)
  with j.unlocked():
    j.drawers, j.seed = tuple(drawers), int(seed)
  return j


def epoch_scores(wd: str, protocols, judge: str, judge_drawers, judge_seed: int) -> dict:
  """{settings, rows: [{epoch, step, <protocol>: val %, judge: %}], picks: {protocol: epoch},
  judge_tta: {epoch: %}} for every kept epoch-end checkpoint of `wd` (the judge with TTA at the picks only)."""
  from siamese_jax import input_pipeline, oneshot, train  # pylint: disable=g-import-not-at-top

  settings = {"protocols": list(protocols), "judge": judge, "judge_drawers": list(judge_drawers), "seed": judge_seed}
  path = os.path.join(wd, SCORES_FILE)
  config = workdir_lib.read_config(wd)
  spe = train.steps_per_epoch(config.train)
  steps = [s for s in workdir_lib.checkpoint_steps(wd) if s % spe == 0]  # epoch ends: what training validated
  if not steps:
    raise workdir_lib.WorkdirError(f"{wd} holds no checkpoint (train with --config.train.keep_checkpoints=<epochs>)")
  kept = {"rows": [], "judge_tta": {}}
  if os.path.exists(path):
    with open(path) as fh:
      recorded = json.load(fh)
    kept = recorded if recorded.get("settings") == settings else kept
  done = {r["step"]: r for r in kept["rows"]}
  out = {"settings": settings, "rows": [], "picks": {}, "judge_tta": dict(kept["judge_tta"])}
  config.data.manual_dir = config.data.manual_dir or os.environ.get("OMNIGLOT_DIR")
  v, m, bs = config.validation, config.model, config.eval.batch_size
  sections = {"validation": v, "judge": judge_section(v, judge_drawers, judge_seed)}

  @functools.cache
  def characters(part):  # read only when something is scored
    return input_pipeline.held_out_characters(sections[part], config.data, m.image_size, m.channels)

  def scorer(step):
    return oneshot.config_scorer(workdir_lib.load_params(wd, m, "checkpoints", step), m)

  def judged(s):
    return selection.PROTOCOLS[judge](s, characters("judge"), sections["judge"], bs)["val_one_shot"]

  for step in steps:
    if step not in done:
      base = scorer(step)
      row = {"epoch": step // spe, "step": step}
      for p in protocols:
        row[p] = selection.PROTOCOLS[p](base, characters("validation"), v, bs)["val_one_shot"]
      row["judge"] = judged(base)
      print(f"{wd} epoch {row['epoch']}: " + ", ".join(f"{k} {row[k]:.2f}" for k in (*protocols, "judge")), flush=True)
      done[step] = row
      workdir_lib.write_json(path, {**out, "rows": [done[s] for s in steps if s in done]})  # survives a kill
    out["rows"].append(done[step])
  rows = out["rows"]
  out["picks"] = {p: rows[first_best([r[p] for r in rows])]["epoch"] for p in protocols}
  for epoch in sorted(set(out["picks"].values())):
    if str(epoch) not in out["judge_tta"]:
      out["judge_tta"][str(epoch)] = judged(oneshot.tta_from_config(scorer(epoch * spe), config.augment, config.eval))
      workdir_lib.write_json(path, out)
  workdir_lib.write_json(path, out)
  return out


def summary(scores: dict[str, dict], protocols, baseline: str) -> str:
  """Markdown: per workdir the epoch each protocol picks and the judge (plain / with TTA) there; per
  protocol the mean +- sd of the judge with TTA, and its gain over `baseline` paired by workdir with
  the verdict against the baseline's spread over workdirs."""
  names = list(scores)
  lines = ["| protocol | " + " | ".join(names) + " | judge with TTA, mean +- sd | gain +- sd | verdict |"]
  lines.append("|---" * (len(names) + 4) + "|")
  tta = {p: [s["judge_tta"][str(s["picks"][p])] for s in scores.values()] for p in protocols}
  spread = selection.sd(tta[baseline])
  for p in protocols:
    cells = []
    for s in scores.values():
      e = s["picks"][p]
      plain = next(r["judge"] for r in s["rows"] if r["epoch"] == e)
      cells.append(f"epoch {e}: {plain:.2f} / {s['judge_tta'][str(e)]:.2f}")
    a = np.array(tta[p])
    gain, gain_sd = selection.paired_gain(a, tta[baseline])
    verdict = "baseline" if p == baseline else selection.verdict(gain, spread)
    mean = f"{a.mean():.2f} +- {selection.sd(a):.2f}"
    lines.append(f"| {p} | {' | '.join(cells)} | {mean} | {gain:+.2f} +- {gain_sd:.2f} | {verdict} |")
  best = [max(s["rows"], key=lambda r: r["judge"]) for s in scores.values()]
  cells = " | ".join(f"epoch {r['epoch']}: {r['judge']:.2f} / -" for r in best)
  lines.append(f"| the judge's own best epoch (plain) | {cells} | | | a bound |")
  return "\n".join(lines)


def plot(scores: dict[str, dict], protocols, path: str) -> None:
  """One panel per workdir: each protocol's validation and the judge against the epoch, picks marked."""
  plt = figures.pyplot()
  fig, axes = plt.subplots(1, len(scores), figsize=(5 * len(scores), 3.8), squeeze=False)
  for ax, (name, s) in zip(axes[0], scores.items()):
    epochs = [r["epoch"] for r in s["rows"]]
    for key in (*protocols, "judge"):
      label = (
        f"judge ({s['settings']['judge']}, drawers {_span(s['settings']['judge_drawers'])})" if key == "judge" else key
      )
      (line,) = ax.plot(epochs, [r[key] for r in s["rows"]], marker=".", ms=3, label=label)
      if key != "judge":
        e = s["picks"][key]
        ax.axvline(e, color=line.get_color(), ls="--", alpha=0.6)
    ax.set_title(name)
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
  fig.tight_layout()
  figures.save(fig, path)
  plt.close(fig)


def _span(drawers) -> str:
  return (
    f"{min(drawers)}-{max(drawers)}" if list(drawers) == list(range(min(drawers), max(drawers) + 1)) else str(drawers)
  )


def main(argv):
  f = flags.FLAGS
  from siamese_jax import cli  # pylint: disable=g-import-not-at-top
  from siamese_jax.tools import tta  # pylint: disable=g-import-not-at-top

  workdirs = argv[1:]
  if not workdirs:
    raise app.UsageError("give the trained workdirs, one per seed")
  protocols = list(f.protocols)
  unknown = [p for p in (*protocols, f.judge) if p not in selection.PROTOCOLS]
  if unknown or f.baseline not in protocols:
    raise app.UsageError(f"protocols and judge from {sorted(selection.PROTOCOLS)}; the baseline among --protocols")
  with cli.one_line_errors():
    drawers = tta.drawer_list(f.judge_drawers)
    scores = {
      os.path.basename(w.rstrip("/")): epoch_scores(w, protocols, f.judge, drawers, f.judge_seed) for w in workdirs
    }
    print("\n" + summary(scores, protocols, f.baseline))
    if f.out:
      plot(scores, protocols, f.out)
      print(f"figure: {f.out}")


if __name__ == "__main__":  # flags defined here, so that tests can import this module beside other scripts
  flags.DEFINE_list("protocols", list(selection.PROTOCOLS), "Validation protocols to compare.")
  flags.DEFINE_string("baseline", "within_alphabet", "The protocol the others' gains are paired against.")
  flags.DEFINE_string("judge", "lake_runs", "The protocol that judges the picked epochs, on --judge_drawers.")
  flags.DEFINE_list("judge_drawers", ["1-12"], "Drawers of the validation characters the judge draws from.")
  flags.DEFINE_integer("judge_seed", 7, "Seed of the judge's tasks.")
  flags.DEFINE_string("out", None, "Figure: each workdir's curves with the picks marked.")
  app.run(main)
