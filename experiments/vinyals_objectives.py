"""Objectives side by side on one encoder, on the Vinyals split: Koch's clamped BCE on every pair with
hard negatives (the `:vinyals` recipe, the baseline) against contrastive, triplet and prototypical
losses scored by the Euclidean head, each on the same all-pairs batches (32 characters x 4 drawers),
the same budget and the same evaluation, 3 seeds each.

The budget is the preset's recipe cut to 1,000 steps (2 epochs, the cosine schedule over them), 12
trials two at a time on one core each. The encoder dominates every objective's step, so equal steps
are nearly equal wall-clock (each trial's minutes: `seed_table`'s "training minutes"). Ranked on the
Vinyals validation characters (20-way within an alphabet, 1,000 tasks) only; each trial's test
figures (the 2x2 episode table and fresh Lake-format runs, no test-time augmentation) come after,
with `--mode=eval` (docs/results.md has the same trials as a shell loop, one core each):

python -m siamese_jax.sweep --sweep=experiments/vinyals_objectives.py --workdir=runs/vinyals_objectives \
  --noevaluate_winner
for d in runs/vinyals_objectives/trials/*; do python -m siamese_jax.main --config=configs/koch.py:vinyals \
  --mode=eval --workdir=$d --config.eval.tta_copies=1 --config.eval.train_alphabet_tasks=False \
  --config.eval.baselines="()"; done
python -m siamese_jax.tools.seed_table runs/vinyals_objectives/trials/*objective=triplet*
"""

CONFIG = "configs/koch.py:vinyals"
SEEDS = 3
RESOURCES = {"cpu": 1}
BUDGET = {"train.max_epochs": 2, "validation.num_tasks": 1000}
BASELINE = BUDGET
METRIC = {**BUDGET, "train.hard_negatives": 0.0, "model.head": "euclidean"}


def get_sweep():
  return [
    BASELINE,
    {**METRIC, "train.objective": "contrastive"},
    {**METRIC, "train.objective": "triplet"},
    {**METRIC, "train.objective": "prototypical"},
  ]
