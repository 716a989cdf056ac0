"""What a refactor must not change, as one JSON line: the `:cpu` preset's first training steps (each
loss and a hash of the parameters after them), their validation, and the shipped model's scores on
Lake's 20 runs and on fresh Lake-format runs (with its test-time augmentation).

Run it for two source trees and compare the lines (the tree first on PYTHONPATH is measured):

  git worktree add /tmp/before <commit>
  PYTHONPATH=/tmp/before python siamese_jax/tools/fingerprint.py --manual_dir=../shared/omniglot
  PYTHONPATH=. python siamese_jax/tools/fingerprint.py --manual_dir=../shared/omniglot
"""

import hashlib
import json

from absl import app, flags


def main(argv):
  del argv
  FLAGS = flags.FLAGS  # noqa: N806 - the flags, defined below for a run of this file
  import os  # pylint: disable=g-import-not-at-top

  import jax  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top

  from configs import koch  # pylint: disable=g-import-not-at-top
  import siamese_jax  # pylint: disable=g-import-not-at-top
  from siamese_jax import evaluate, input_pipeline, lake_runs, train  # pylint: disable=g-import-not-at-top

  c = koch.get_config("cpu")
  c.data.manual_dir, c.data.data_dir = FLAGS.manual_dir, FLAGS.data_dir
  chars = input_pipeline.training_characters(c.data, c.model.image_size, c.augment.class_rotations)
  state, opt = train.create_train_state(jax.random.PRNGKey(0), c)
  data, step = train.make_data(c, chars), train.make_train_step(c, opt)
  losses = []
  for _ in range(FLAGS.steps):
    state, out = step(state, data)
    losses.append(float(out["loss"]))
  leaves = jax.tree_util.tree_leaves(state.params)
  digest = hashlib.sha256(b"".join(np.asarray(x).tobytes() for x in leaves)).hexdigest()[:16]
  val = train.validation_metrics(c, state.params, input_pipeline.held_out_characters(c.validation, c.data, 28))
  net = siamese_jax.load("pretrained")
  runs = lake_runs.load_runs(os.path.join(FLAGS.manual_dir, "all_runs.zip"))
  cfg = net.config
  cfg.data.manual_dir, cfg.data.data_dir = c.data.manual_dir, c.data.data_dir
  fresh = evaluate.fresh_lake_runs(net.scorer, evaluate.load_eval_characters(cfg, "evaluation"), FLAGS.fresh_runs, 0)
  print(
    json.dumps(
      {
        "tree": os.path.dirname(os.path.dirname(siamese_jax.__file__)),
        "losses": losses,
        "params_sha256": digest,
        "validation": val,
        "lake_runs_tta": evaluate.score_lake_runs(net.scorer, runs, net.image_size)["accuracy"],
        "fresh_runs_tta": fresh["accuracy"],
      }
    )
  )


if __name__ == "__main__":  # flags defined here, so that tests can import this module beside other tools
  flags.DEFINE_string("manual_dir", None, "Folder with the Omniglot zips (and all_runs.zip).")
  flags.DEFINE_string("data_dir", None, "tfds data dir.")
  flags.DEFINE_integer("steps", 20, "Training steps of the :cpu preset.")
  flags.DEFINE_integer("fresh_runs", 100, "Fresh Lake-format runs scored by the shipped model.")
  flags.mark_flag_as_required("manual_dir")
  app.run(main)
