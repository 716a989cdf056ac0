"""Test-time augmentation on validation: does averaging over distortions help a trained model?

For each trained workdir (one per seed), scores the validation of its config (2,000 20-way
within-alphabet tasks on the validation alphabets, the tasks training chose its best epoch on)
with `oneshot.tta_scorer` for every number of copies and distortion strength (a factor on the
deviations of the training distortions from identity), and prints a table: accuracy per seed,
mean +- sd, and the gain over no TTA paired by seed (mean +- sd). Validation only: no test
alphabet or Lake run is read.

  python experiments/tta.py --workdirs=runs/cpu_s0,runs/cpu_s1,runs/cpu_s2 --copies=1,4,8 --strengths=1,0.5
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the repository root

from absl import app, flags

from experiments import over_seeds


def main(_):
  f = flags.FLAGS
  from siamese_jax import augment, oneshot, train  # pylint: disable=g-import-not-at-top

  variants = [(int(c), float(s)) for c in f.copies for s in f.strengths if int(c) > 1 or s == f.strengths[0]]
  acc = {v: [] for v in variants}
  for wd in f.workdirs:
    config, params, chars, base = over_seeds.load_validation(wd, f.num_tasks)
    for c, s in variants:
      scorer = oneshot.tta_scorer(base, c, augment.scaled(config.augment, s), f.tta_seed)
      m = train.validation_metrics(config, params, chars, scorer)
      acc[(c, s)].append(m["val_one_shot"])
      print(
        f"{wd}  copies {c} strength {s}: val {m['val_one_shot']:.2f}  verification {m['val_verification']:.2f}",
        flush=True,
      )
  print("\n" + over_seeds.gain_table(["copies", "strength"], acc, {v: acc[variants[0]] for v in variants}, f.workdirs))


if __name__ == "__main__":  # flags defined here, so that tests can import this module beside other scripts
  flags.DEFINE_list("workdirs", None, "Trained workdirs, one per seed.", required=True)
  flags.DEFINE_list("copies", ["1", "4", "8"], "Versions of each image (1: no TTA).")
  flags.DEFINE_list("strengths", ["1.0", "0.5"], "Factors on the training distortions' deviation from identity.")
  flags.DEFINE_integer("tta_seed", 0, "Seed of the fixed distortions.")
  flags.DEFINE_integer("num_tasks", 2000, "Validation tasks (the same for every workdir, whatever it trained with).")
  app.run(main)
