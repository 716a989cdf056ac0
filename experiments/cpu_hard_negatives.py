"""The `:cpu` preset with hard negatives off (0.0, the preset until 2026-12-06), at beta 0.5 (the
preset since) and at beta 1.0 (`train.hard_negatives`), 3 seeds each: ranked by validation over
seeds; only the winner is evaluated on the test protocols.

python -m siamese_jax.sweep --sweep=experiments/cpu_hard_negatives.py --workdir=runs/cpu_hard_negatives
"""

CONFIG = "configs/koch.py:cpu"
SEEDS = 3
RESOURCES = {"cpu": 2}  # one trial at a time on a 2-core machine; on a GPU cluster: {"cpu": 4, "gpu": 0.5}


def get_sweep():
  return [{"train.hard_negatives": beta} for beta in (0.0, 0.5, 1.0)]
