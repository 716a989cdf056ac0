"""What every command-line entry point shares: process set-up and the error policy.

Errors of the user's making (a config key, the data, the workdir, a full disk, a
non-finite loss, a stop signal) print one line and exit with a status; any other
exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import contextlib
import logging as logging_std
import sys

from absl import app, logging


class _QuietLibraries(logging_std.Filter):
  """Drops orbax's, tfds' and clu's INFO chatter from the absl log; warnings still pass."""

  def filter(self, record):
    noisy = ("/orbax/", "/tensorflow_datasets/", "/clu/")
    return record.levelno >= logging_std.WARNING or not any(n in record.pathname for n in noisy)


def run(main) -> None:
  """absl's app.run, after refusing an unknown `--config.KEY` override with one line."""
  from siamese_jax import config_check  # pylint: disable=g-import-not-at-top

  bad = config_check.unknown_override(sys.argv[1:])
  if bad:
    print(f"error: config.{bad}: unknown key (a typo?)", file=sys.stderr)
    sys.exit(2)
  app.run(main)


def checked(config):
  """Sets up the process (allocator, quiet logs, multi-host) and returns `config` once checked."""
  logging.get_absl_handler().addFilter(_QuietLibraries())
  from siamese_jax import host  # pylint: disable=g-import-not-at-top

  host.tune_allocator()  # before XLA allocates anything
  import jax  # pylint: disable=g-import-not-at-top

  from siamese_jax import config_check, sharding  # pylint: disable=g-import-not-at-top

  sharding.maybe_initialize_distributed()
  config_check.check(config, jax.device_count())
  return config


@contextlib.contextmanager
def one_line_errors():
  """Turns the expected errors into `error: ...` on stderr and an exit status; re-raises the rest."""
  try:
    yield
  except Exception as e:  # noqa: BLE001 - sorted below; anything unexpected is re-raised
    from siamese_jax import config_check, selection, train, workdir  # pylint: disable=g-import-not-at-top
    from siamese_jax.omniglot import OmniglotDataError  # pylint: disable=g-import-not-at-top

    if isinstance(e, train.Interrupted):
      logging.warning("%s", e)
      print(f"interrupted: {e}", file=sys.stderr)
      sys.exit(128 + e.signum)
    if isinstance(
      e,
      (
        config_check.ConfigError,
        selection.ValidationError,
        OmniglotDataError,
        workdir.WorkdirError,
        workdir.WriteError,
        FloatingPointError,
      ),
    ):
      logging.error("%s", e)
      print(f"error: {e}", file=sys.stderr)
      sys.exit(1 if isinstance(e, (FloatingPointError, workdir.WriteError)) else 2)
    raise
