"""Entry point: `python -m siamese_jax.main --config=configs/koch.py --workdir=runs/koch`.

Modes: train_and_eval (default; resumes from the workdir's latest checkpoint),
train, eval (evaluates the workdir's best or latest parameters).
"""

import logging as logging_std
import sys

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", None, "Config file, e.g. configs/koch.py:smoke.",
                                lock_config=True)
flags.DEFINE_string("workdir", None, "Directory for checkpoints, metrics and figures.")
flags.DEFINE_enum("mode", "train_and_eval", ["train_and_eval", "train", "eval"],
                  "train_and_eval: train then evaluate; eval: evaluate a trained workdir.")
flags.DEFINE_bool("allow_config_change", False,
                  "Resume a workdir even though its recorded config differs from this one.")
flags.mark_flags_as_required(["config", "workdir"])


class _QuietLibraries(logging_std.Filter):
  """Drops orbax's, tfds' and clu's INFO chatter from the absl log; warnings still pass."""

  def filter(self, record):
    noisy = ("/orbax/", "/tensorflow_datasets/", "/clu/")
    return record.levelno >= logging_std.WARNING or not any(n in record.pathname for n in noisy)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  logging.get_absl_handler().addFilter(_QuietLibraries())
  from siamese_jax import host  # pylint: disable=g-import-not-at-top

  host.tune_allocator()  # before XLA allocates anything
  import jax  # pylint: disable=g-import-not-at-top

  from siamese_jax import config_check, evaluate, sharding, train  # pylint: disable=g-import-not-at-top
  from siamese_jax.omniglot import OmniglotDataError  # pylint: disable=g-import-not-at-top

  config, workdir = FLAGS.config, FLAGS.workdir
  try:
    sharding.maybe_initialize_distributed()
    config_check.validate(config, jax.device_count())
    if FLAGS.mode == "train":
      train.train(config, workdir, FLAGS.allow_config_change)
    elif FLAGS.mode == "train_and_eval":
      train.train_and_evaluate(config, workdir, FLAGS.allow_config_change)
    else:
      evaluate.evaluate_workdir(evaluate.with_recorded_model(config, workdir), workdir)
  except train.Interrupted as e:
    logging.warning("%s", e)
    print(f"interrupted: {e}", file=sys.stderr)
    sys.exit(128 + e.signum)
  except (config_check.ConfigError, OmniglotDataError, FileNotFoundError, ValueError, FloatingPointError) as e:
    logging.error("%s", e)
    print(f"error: {e}", file=sys.stderr)
    sys.exit(1 if isinstance(e, FloatingPointError) else 2)


def run():
  from siamese_jax import config_check  # pylint: disable=g-import-not-at-top

  bad = config_check.unknown_override(sys.argv[1:])
  if bad:
    print(f"error: config.{bad}: unknown key (a typo?)", file=sys.stderr)
    sys.exit(2)
  app.run(main)


if __name__ == "__main__":
  run()
