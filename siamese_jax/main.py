"""Entry point: `python -m siamese_jax.main --config=configs/koch.py:cpu --workdir=runs/cpu`.

Modes: train_and_eval (default; resumes from the workdir's latest checkpoint), train,
eval (evaluates the workdir's best or latest parameters, read-only).
"""

from absl import app, flags
from ml_collections import config_flags

from siamese_jax import cli

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", None, "Config file, e.g. configs/koch.py:smoke.", lock_config=True)
flags.DEFINE_string("workdir", None, "Directory for checkpoints, metrics and figures.")
flags.DEFINE_enum(
  "mode",
  "train_and_eval",
  ["train_and_eval", "train", "eval"],
  "train_and_eval: train then evaluate; eval: evaluate a trained workdir.",
)
flags.DEFINE_bool("allow_config_change", False, "Resume a workdir even though its recorded config differs.")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  with cli.one_line_errors():
    from siamese_jax import evaluate, train, workdir  # pylint: disable=g-import-not-at-top

    config = cli.checked(FLAGS.config)
    if FLAGS.mode == "eval":
      evaluate.evaluate_workdir(workdir.with_recorded_model(config, FLAGS.workdir), FLAGS.workdir)
    elif FLAGS.mode == "train":
      train.train(config, FLAGS.workdir, FLAGS.allow_config_change)
    else:
      train.train_and_evaluate(config, FLAGS.workdir, FLAGS.allow_config_change)


if __name__ == "__main__":
  cli.run(main)
