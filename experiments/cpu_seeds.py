"""The `:cpu` preset with 3 seeds: its headline figures as mean +- sd (validation; test for the winner only).

python -m siamese_jax.sweep --sweep=experiments/cpu_seeds.py --workdir=runs/cpu_seeds
"""

CONFIG = "configs/koch.py:cpu"
SEEDS = 3
RESOURCES = {"cpu": 2}  # one trial at a time on a 2-core machine; on a GPU cluster: {"cpu": 4, "gpu": 0.5}


def get_sweep():
  return [{}]
