"""N-way sweep across trained workdirs (checkpoints): 1- and 5-shot accuracy vs N, evaluation only.

Evaluates each workdir named in $NWAY_WORKDIRS (comma-separated; default runs/cpu) without
retraining; each trial reads the source's config and parameters and writes its eval.json to its own directory.

  NWAY_WORKDIRS=runs/cpu,runs/koch python -m siamese_jax.sweep --sweep=experiments/nway.py --workdir=runs/nway
"""

import os

CONFIG = "configs/koch.py:cpu"  # Only the eval section matters; the model comes from each source.


def get_sweep():
  sources = [s for s in os.environ.get("NWAY_WORKDIRS", "runs/cpu").split(",") if s]
  return [{"_mode": "eval", "_from": os.path.abspath(src), "eval.shots": (1, 5)} for src in sources]
