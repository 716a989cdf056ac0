"""Ensembles on validation: does averaging the pair scores of independently trained models help?

Each group is a few trained workdirs of one config (e.g. seeds 0 and 1) joined by '+'. For each
group and number of TTA copies (at each workdir's own `eval.tta_strength`), scores the validation
of its config (2,000 20-way within-alphabet tasks on the validation alphabets) with every member
alone and with `oneshot.ensemble_scorer` of all of them, and prints a table: accuracy per group
(members: the mean of the members alone), mean +- sd over groups, and the ensemble's gain over its
members paired by group. Validation only: no test alphabet or Lake run is read.

  python experiments/ensemble.py --groups=runs/half_s0+runs/half_s1,runs/half_s2+runs/half_s3 --copies=1,16
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the repository root

from absl import app, flags

from experiments import over_seeds


def main(_):
  f = flags.FLAGS
  import numpy as np  # pylint: disable=g-import-not-at-top

  from siamese_jax import augment, oneshot, train  # pylint: disable=g-import-not-at-top

  copies = [int(c) for c in f.copies]
  acc = {(m, c): [] for m in (1, 0) for c in copies}  # 1: members alone (their mean), 0: the ensemble
  for group in f.groups:
    members = [over_seeds.load_validation(wd, f.num_tasks) for wd in group.split("+")]
    config, _, chars, _ = members[0]
    for c in copies:

      def tta(scorer, cfg, c=c):
        return oneshot.tta_scorer(scorer, c, augment.scaled(cfg.augment, cfg.eval.tta_strength), f.tta_seed)

      alone = [train.validation_metrics(config, None, chars, tta(b, cfg))["val_one_shot"] for cfg, *_, b in members]
      both = tta(oneshot.ensemble_scorer([b for *_, b in members]), config)
      ens = train.validation_metrics(config, None, chars, both)["val_one_shot"]
      acc[(1, c)].append(float(np.mean(alone)))
      acc[(0, c)].append(ens)
      print(f"{group}  copies {c}: members {' '.join(f'{a:.2f}' for a in alone)}  ensemble {ens:.2f}", flush=True)
  ref = {(m, c): acc[(1, c)] for m, c in acc}
  print("\nmembers 1: the members alone (mean); 0: their ensemble")
  names = ["+".join(os.path.basename(w.rstrip("/")) for w in g.split("+")) for g in f.groups]
  print(over_seeds.gain_table(["members", "copies"], acc, ref, names))


if __name__ == "__main__":  # flags defined here, so that tests can import this module beside other scripts
  flags.DEFINE_list("groups", None, "Groups of trained workdirs, members joined by '+'.", required=True)
  flags.DEFINE_list("copies", ["1", "16"], "TTA copies (1: no TTA), at each workdir's eval.tta_strength.")
  flags.DEFINE_integer("tta_seed", 0, "Seed of the fixed distortions.")
  flags.DEFINE_integer("num_tasks", 2000, "Validation tasks (the same for every workdir, whatever it trained with).")
  app.run(main)
