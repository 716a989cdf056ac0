"""Config checks: one line naming the key, every preset valid, unknown keys, device division."""

import pytest

from configs import koch
from siamese_jax import config_check


@pytest.mark.parametrize(
  "key,value,match",
  [
    ("train.learning_rate", -1.0, "config.train.learning_rate: must be a finite number > 0"),
    ("train.learning_rate", float("nan"), "config.train.learning_rate: must be a finite number > 0, got nan"),
    ("train.l2", float("inf"), "config.train.l2: must be a finite number >= 0, got inf"),
    ("validation.protocol", "test_runs", "config.validation.protocol: 'test_runs'; choose from ['within_alphabet'"),
    ("validation.lake_runs", 0, "config.validation.lake_runs: must be a finite number > 0"),
    ("train.lr_scales", (1.0, 2.0), "config.train.lr_scales: needs one value per layer (6: conv..., embed, head)"),
    ("model.image_size", 12, "config.model.image_size: image_size 12 is too small"),
    ("validation.alphabets", ("Klingon",), "config.validation.alphabets: ['Klingon'] not in split"),
    ("data.train_alphabets", ("Angelic",), "config.data.train_alphabets: ['Angelic'] not in split 'background'"),
    ("validation.n_way", 60, "config.validation.n_way: 60-way within-alphabet tasks need"),
    ("eval.ways", (2, 700), "config.eval.ways: N=700"),
    ("eval.tta_copies", 0, "config.eval.tta_copies: must be an integer >= 1"),
    ("train.weight_decay", 0.05, "config.train.weight_decay: is Adam's decoupled decay; koch_sgd takes train.l2"),
    ("train.optimizer", "rmsprop", "config.train.optimizer: 'rmsprop'"),
    ("model.conv_impl", "cudnn", "config.model.conv_impl: 'cudnn'; choose from ['auto', 'xla'"),
    ("data.train_drawers", (1, 25), "config.data.train_drawers: drawers must be distinct integers in 1..20"),
    ("validation.alphabets", None, "config.validation.alphabets: ['Atlantean', 'Ge_ez', "),  # every eval alphabet
    ("validation.alphabets", ("Keble", "Tengwar"), "config.validation.alphabets: ['Tengwar'] are also test alphabets"),
    (
      "data.extra_train_alphabets",
      ("Latin",),
      "config.data.extra_train_alphabets: ['Latin'] not in split 'evaluation'",
    ),
    (
      "data.extra_train_alphabets",
      ("Keble",),
      "config.data.extra_train_alphabets: ['Keble'] are also alphabets of valid",
    ),
    (
      "data.extra_train_alphabets",
      ("Tengwar",),
      "config.data.extra_train_alphabets: ['Tengwar'] are also alphabets of eval",
    ),
  ],
)
def test_config_errors_name_the_key(key, value, match):
  cfg = koch.get_config()
  section, name = key.split(".")
  with cfg.unlocked():
    cfg[section][name] = value
  with pytest.raises(config_check.ConfigError) as e:
    config_check.check(cfg)
  assert str(e.value).startswith(match) and "\n" not in str(e.value)


def test_every_preset_is_valid_and_unknown_keys_fail():
  for preset in koch.PRESETS:
    config_check.check(koch.get_config(preset))
  cfg = koch.get_config()
  cfg.train.batch_sizee = 3
  with pytest.raises(config_check.ConfigError, match="config.train.batch_sizee: unknown key"):
    config_check.check(cfg)
  assert config_check.unknown_override(["--config.train.batch_size=3", "--config.model.widht=2"]) == "model.widht"
  assert config_check.unknown_override(["--config.train.batch_size=3", "--workdir=x"]) is None


def test_episodes_need_drawers_for_their_shots_and_queries():
  cfg = koch.get_config("smoke")
  cfg.eval.episodes, cfg.eval.episode_shots, cfg.eval.episode_queries = 100, (1, 5), 16
  with pytest.raises(config_check.ConfigError, match="config.eval.episode_shots: 5-shot episodes with 16 queries"):
    config_check.check(cfg)
  cfg.eval.episode_queries = 15
  config_check.check(cfg)


def test_batch_must_divide_across_devices():
  cfg = koch.get_config("smoke")
  config_check.check(cfg, num_devices=4)
  with pytest.raises(config_check.ConfigError, match="config.train.batch_size: global batch of 32 .* 3 devices"):
    config_check.check(cfg, num_devices=3)


def test_user_errors_are_one_line_and_bugs_keep_their_traceback(capsys):
  from siamese_jax import cli

  with pytest.raises(SystemExit) as e:
    with cli.one_line_errors():
      config_check.check(_bad_config())
  assert e.value.code == 2
  err = capsys.readouterr().err
  assert err.startswith("error: config.train.learning_rate: must be a finite number > 0") and err.count("\n") == 1
  with pytest.raises(ZeroDivisionError):  # not a user error: re-raised with its traceback
    with cli.one_line_errors():
      _ = 1 / 0
  with pytest.raises(SystemExit) as e:  # an allocation failure that a memory estimate did not foresee
    with cli.one_line_errors():
      raise RuntimeError("RESOURCE_EXHAUSTED: Out of memory allocating 46179488894976 bytes.\nmore")
  err = capsys.readouterr().err
  assert e.value.code == 1 and err.count("\n") == 1 and "lower config.train.batch_size" in err


def _bad_config():
  cfg = koch.get_config("smoke")
  cfg.train.learning_rate = -1.0
  return cfg


@pytest.mark.parametrize(
  "arg, match",
  [
    ("--config=configs/koch.py:nope", "error: --config: unknown preset 'nope' in configs/koch.py; choose from ["),
    ("--config=configs/nothing.py", "error: --config: no such config file 'configs/nothing.py'"),
  ],
)
def test_a_missing_config_file_or_unknown_preset_is_one_line(arg, match, tmp_path):
  import subprocess
  import sys

  from conftest import ROOT

  proc = subprocess.run(
    [sys.executable, "-m", "siamese_jax.main", arg, f"--workdir={tmp_path}"],
    cwd=ROOT,
    capture_output=True,
    text=True,
    timeout=120,
  )
  assert proc.returncode == 2 and proc.stderr.startswith(match) and proc.stderr.count("\n") == 1, proc.stderr


def test_the_config_argument_is_checked_before_jax_is_imported():
  import subprocess
  import sys

  from conftest import ROOT

  code = (
    "import sys; from siamese_jax import cli; "
    "assert cli.config_error(['--config=configs/koch.py:nope']).startswith('--config: unknown preset'); "
    "assert cli.config_error(['--config', 'configs/koch.py:cpu']) is None; "
    "print('jax' in sys.modules)"
  )
  proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
  assert proc.returncode == 0 and proc.stdout.strip() == "False", proc.stderr[-2000:]
