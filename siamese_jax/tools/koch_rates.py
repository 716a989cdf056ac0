"""Why a layer-wise SGD recipe learns or not: per-layer update sizes, embedding saturation, discrimination.

For the parameters at init (from the config and its seed) and at any checkpoints of a workdir,
on one batch of training pairs (half same, half different characters, background set only):
  - the loss, the share of embedding units saturated (< 0.01 or > 0.99), the mean |e1 - e2| of
    different characters and the mean logit of same and of different pairs;
  - per layer: |w|, |grad|, the relative update lr_j |grad| / |w| at the config's rates, and the
    rate that would give `--target` (clipped to Koch et al.'s search range [1e-4, 1e-1]).

  python -m siamese_jax.tools.koch_rates --config=configs/koch.py --manual_dir=../shared/omniglot
  python -m siamese_jax.tools.koch_rates --config=configs/koch.py --workdir=runs/koch_1h \
      --checkpoints=best:400,checkpoints:500 --manual_dir=../shared/omniglot

A workdir's recorded config is used as it was (one without train.lr_scales ran at uniform rates).
"""

from __future__ import annotations

import sys

from absl import app, flags, logging
import jax
import jax.numpy as jnp
from ml_collections import config_flags
import numpy as np

from siamese_jax import input_pipeline, losses, model, optim  # noqa: E402
from siamese_jax import workdir as wd_lib  # noqa: E402

PAPER_LR_RANGE = (1e-4, 1e-1)  # Koch et al. (2015), section 4.1: the Bayesian search's range per layer.

_CONFIG = config_flags.DEFINE_config_file("config", "configs/koch.py", "Config (and preset).")
_WORKDIR = flags.DEFINE_string("workdir", None, "Workdir whose checkpoints to inspect (its config is used).")
_CHECKPOINTS = flags.DEFINE_list("checkpoints", [], "SUBDIR:STEP entries of the workdir, e.g. best:400.")
_PAIRS = flags.DEFINE_integer("pairs", 64, "Pairs in the batch (half same, half different).")
_TARGET = flags.DEFINE_float("target", 1e-3, "Relative update per step the suggested rates aim at.")
_MANUAL_DIR = flags.DEFINE_string("manual_dir", None, "Folder with the Omniglot zips.")


def pair_batch(images: np.ndarray, pairs: int):
  """Images [C, D, H, W, 1] -> x_a, x_b [pairs, H, W, 1] and labels [pairs]: the first half
  same character (drawers 0 and 1), the second half character i against character i + pairs/2."""
  half = pairs // 2
  a = images[:half, 0]
  same, other = images[:half, 1], images[half : 2 * half, 1]
  x_a = jnp.asarray(np.concatenate([a, a]))
  x_b = jnp.asarray(np.concatenate([same, other]))
  return x_a, x_b, jnp.concatenate([jnp.ones(half), jnp.zeros(half)])


def report(name: str, params, spec, x_a, x_b, labels, lrs: dict, target: float) -> list[float]:
  """Prints one state's statistics; returns the suggested per-layer rates (network order)."""
  half = x_a.shape[0] // 2
  encode = lambda p, x: model.encode(p, x, spec)
  loss, grads = jax.value_and_grad(losses.pair_loss)(params, x_a, x_b, labels, encode)
  e_a, e_b = encode(params, x_a), encode(params, x_b)
  logits = model.pair_logits(params, e_a, e_b)
  e = np.asarray(e_a[:half])
  saturated = 100 * np.mean((e < 0.01) | (e > 0.99))
  gap = float(jnp.abs(e_a[half:] - e_b[half:]).mean())
  print(
    f"\n{name}: loss {float(loss):.4f}, embedding saturated {saturated:.1f}%, mean |e1-e2| (different)"
    f" {gap:.4f}, logit same {float(logits[:half].mean()):+.3f} / different {float(logits[half:].mean()):+.3f}"
  )
  print(f"  {'layer':8s} {'|w|':>9s} {'|grad|':>9s} {'lr':>8s} {'lr|g|/|w|':>10s} {'rate for target':>16s}")
  suggested = []
  for layer in optim.layer_names(params):
    w, g = (float(jnp.linalg.norm(t[layer]["w"])) for t in (params, grads))
    rel = lrs[layer] * g / w
    rate = float(np.clip(target * w / max(g, 1e-12), *PAPER_LR_RANGE))
    suggested.append(rate)
    print(f"  {layer:8s} {w:9.3f} {g:9.4f} {lrs[layer]:8.1e} {rel:10.2e} {rate:16.1e}")
  return suggested


def main(argv) -> None:
  del argv
  logging.set_verbosity(logging.ERROR)  # orbax's restore chatter
  config = wd_lib.read_config(_WORKDIR.value) if _WORKDIR.value else _CONFIG.value
  if _MANUAL_DIR.value:
    config.data.manual_dir = _MANUAL_DIR.value
  chars = input_pipeline.training_characters(config.data, config.model.image_size, False)
  rng = np.random.default_rng(config.seed)
  images = chars.images[rng.permutation(len(chars.images))]
  x_a, x_b, labels = pair_batch(images, _PAIRS.value)
  init = model.init(jax.random.PRNGKey(config.seed), config.model)
  lrs = optim.layer_rates(config.train, optim.layer_names(init))
  suggested = report("init", init, model.spec(config.model), x_a, x_b, labels, lrs, _TARGET.value)
  print(f"\nrates for a relative update of {_TARGET.value:g} at init: ({', '.join(f'{r:.1e}' for r in suggested)})")
  for entry in _CHECKPOINTS.value:
    subdir, step = entry.split(":")
    try:
      params = wd_lib.load_params(_WORKDIR.value, config.model, subdir=subdir, step=int(step))
    except wd_lib.WorkdirError as e:
      sys.exit(f"error: {e}")
    report(entry, params, model.spec(config.model), x_a, x_b, labels, lrs, _TARGET.value)


if __name__ == "__main__":
  app.run(main)
