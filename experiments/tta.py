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
import numpy as np

flags.DEFINE_list("workdirs", None, "Trained workdirs, one per seed.", required=True)
flags.DEFINE_list("copies", ["1", "4", "8"], "Versions of each image (1: no TTA).")
flags.DEFINE_list("strengths", ["1.0", "0.5"], "Factors on the training distortions' deviation from identity.")
flags.DEFINE_integer("tta_seed", 0, "Seed of the fixed distortions.")
flags.DEFINE_integer("num_tasks", 2000, "Validation tasks (the same for every workdir, whatever it trained with).")
FLAGS = flags.FLAGS


def main(_):
  from siamese_jax import augment, input_pipeline, oneshot, train, workdir  # pylint: disable=g-import-not-at-top

  variants = [
    (int(c), float(s)) for c in FLAGS.copies for s in FLAGS.strengths if int(c) > 1 or s == FLAGS.strengths[0]
  ]
  acc = {v: [] for v in variants}
  for wd in FLAGS.workdirs:
    config = workdir.read_config(wd)
    config.data.manual_dir = config.data.manual_dir or os.environ.get("OMNIGLOT_DIR")
    config.validation.num_tasks = FLAGS.num_tasks
    params = workdir.load_params(wd, config.model)
    chars = input_pipeline.held_out_characters(config.validation, config.data, config.model.image_size)
    base = oneshot.model_scorer(params, config.model.dtype, config.model.conv_impl)
    for c, s in variants:
      scorer = oneshot.tta_scorer(base, c, augment.scaled(config.augment, s), FLAGS.tta_seed)
      m = train.validation_metrics(config, params, chars, scorer)
      acc[(c, s)].append(m["val_one_shot"])
      print(
        f"{wd}  copies {c} strength {s}: val {m['val_one_shot']:.2f}  verification {m['val_verification']:.2f}",
        flush=True,
      )
  ref = np.array(acc[variants[0]])
  print(
    f"\n| copies | strength | {' | '.join(os.path.basename(w) for w in FLAGS.workdirs)} | mean +- sd | gain +- sd |"
  )
  print("|---" * (len(FLAGS.workdirs) + 4) + "|")
  for v in variants:
    a = np.array(acc[v])
    sd = lambda x: np.std(x, ddof=1) if len(x) > 1 else float("nan")  # noqa: E731
    cells = " | ".join(f"{x:.2f}" for x in a)
    print(
      f"| {v[0]} | {v[1]:g} | {cells} | {a.mean():.2f} +- {sd(a):.2f} | {np.mean(a - ref):+.2f} +- {sd(a - ref):.2f} |"
    )


if __name__ == "__main__":
  app.run(main)
