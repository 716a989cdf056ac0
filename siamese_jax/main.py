"""Entry point: `python -m siamese_jax.main --config=configs/koch.py --workdir=runs/koch`."""

import logging as logging_std

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

from siamese_jax.omniglot import OmniglotDataError

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", None, "Config file, e.g. configs/koch.py:smoke.",
                                lock_config=True)
flags.DEFINE_string("workdir", None, "Directory for checkpoints, metrics and figures.")
flags.DEFINE_enum("mode", "train_and_eval", ["train_and_eval", "train", "eval"],
                  "train_and_eval: train then evaluate; eval: evaluate a trained workdir.")
flags.mark_flags_as_required(["config", "workdir"])


class _QuietLibraries(logging_std.Filter):
  """Drops orbax's and tfds' INFO chatter from the absl log; warnings still pass."""

  def filter(self, record):
    noisy = ("/orbax/", "/tensorflow_datasets/", "/clu/")
    return record.levelno >= logging_std.WARNING or not any(n in record.pathname for n in noisy)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  logging.get_absl_handler().addFilter(_QuietLibraries())
  from siamese_jax import evaluate, train  # pylint: disable=g-import-not-at-top

  config, workdir = FLAGS.config, FLAGS.workdir
  try:
    if FLAGS.mode == "train":
      train.train(config, workdir)
    elif FLAGS.mode == "train_and_eval":
      train.train_and_evaluate(config, workdir)
    else:
      evaluate.evaluate_workdir(config, workdir)
  except (OmniglotDataError, FileNotFoundError, ValueError) as e:
    logging.error("%s", e)
    raise SystemExit(f"error: {e}") from None


if __name__ == "__main__":
  app.run(main)
