"""Objectives side by side on one encoder, on the Vinyals split: Koch's clamped BCE on every pair with
hard negatives (the `:vinyals` preset, the baseline) against contrastive, triplet and prototypical
losses scored by the Euclidean head, each on the same all-pairs batches (32 characters x 4 drawers),
the same 20,000 steps and the same evaluation, 3 seeds each. Ranked on the Vinyals validation
characters only; the winner's test figures (the 2x2 episode table and fresh Lake-format runs) come
after the choice, in sweep_test.md. Each trial takes about as long as the preset (the encoder
dominates the step); the summary's curves give the minutes.

python -m siamese_jax.sweep --sweep=experiments/vinyals_objectives.py --workdir=runs/vinyals_objectives
"""

CONFIG = "configs/koch.py:vinyals"
SEEDS = 3
RESOURCES = {"cpu": 2}
BASELINE = {}
METRIC = {"train.hard_negatives": 0.0, "model.head": "euclidean"}


def get_sweep():
  return [
    BASELINE,
    {**METRIC, "train.objective": "contrastive"},
    {**METRIC, "train.objective": "triplet"},
    {**METRIC, "train.objective": "prototypical"},
  ]
