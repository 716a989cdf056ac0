"""What every command-line entry point shares: process set-up and the error policy.

Errors of the user's making (a config key, the data, the workdir, a full disk, a
non-finite loss, a stop signal) print one line and exit with a status; any other
exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging as logging_std
import os
import signal
import sys

from absl import app, logging


class _QuietLibraries(logging_std.Filter):
  """Drops orbax's, tfds' and clu's INFO chatter from the absl log; warnings still pass."""

  def filter(self, record):
    noisy = ("/orbax/", "/tensorflow_datasets/", "/clu/")
    return record.levelno >= logging_std.WARNING or not any(n in record.pathname for n in noisy)


class Stopped(BaseException):
  """SIGTERM or SIGINT outside the training loop (which checkpoints first; see `train.Interrupted`).
  A BaseException, as KeyboardInterrupt: no `except Exception` on its way up may take it for an error."""

  def __init__(self, signum: int):
    super().__init__(f"stopped by {signal.Signals(signum).name}")
    self.signum = signum


def _stop(signum, frame):
  del frame
  raise Stopped(signum)


def run(main) -> None:
  """absl's app.run, after refusing with one line, before jax is imported, a missing config file, an
  unknown preset or an unknown `--config.KEY` override; SIGTERM and SIGINT stop with one line."""
  from siamese_jax import config_check  # pylint: disable=g-import-not-at-top

  bad = config_error(sys.argv[1:])
  if bad:
    print(f"error: {bad}", file=sys.stderr)
    sys.exit(2)
  bad = config_check.unknown_override(sys.argv[1:])
  if bad:
    print(f"error: config.{bad}: unknown key (a typo?)", file=sys.stderr)
    sys.exit(2)
  for s in (signal.SIGTERM, signal.SIGINT):
    signal.signal(s, _stop)
  app.run(main)


def config_error(argv: list[str]) -> str | None:
  """Why the `--config=FILE[:PRESET]` argument cannot be read (no such file, unknown preset), or None."""
  values = [a.split("=", 1)[1] for a in argv if a.startswith("--config=")]
  values += [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "--config"]
  if not values:
    return None
  path, _, preset = values[-1].partition(":")
  if not os.path.isfile(path):
    return f"--config: no such config file {path!r}"
  spec = importlib.util.spec_from_file_location("config_file", path)
  module = importlib.util.module_from_spec(spec)
  try:
    spec.loader.exec_module(module)
    presets = getattr(module, "PRESETS", None)
  except Exception as e:  # noqa: BLE001 - a config file with a bug is reported, not traced
    return f"--config: {path} fails to load ({type(e).__name__}: {e})"
  if preset and presets is not None and preset not in presets:
    return f"--config: unknown preset {preset!r} in {path}; choose from {sorted(presets)}"
  return None


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
  except Stopped as e:
    logging.warning("%s", e)
    print(f"interrupted: {e}; nothing is left half-written, run the same command again", file=sys.stderr)
    sys.exit(128 + e.signum)
  except Exception as e:  # noqa: BLE001 - sorted below; anything unexpected is re-raised
    from siamese_jax import config_check, selection, train, workdir  # pylint: disable=g-import-not-at-top
    from siamese_jax.omniglot import OmniglotDataError  # pylint: disable=g-import-not-at-top

    if "RESOURCE_EXHAUSTED" in str(e).split("\n", 1)[0]:
      print(
        f"error: out of memory ({str(e).splitlines()[0][:160]}); lower config.train.batch_size"
        " (config.train.chars_per_batch in all_pairs mode) or config.eval.batch_size",
        file=sys.stderr,
      )
      sys.exit(1)
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
