"""The `:cpu` preset's last decision, 20,000 steps against 12,500, as it was made: 3 seeds each,
scored on 2,000 fresh Lake-format runs of the five held-out validation alphabets with all 20
drawers (run seed 3) with the preset's test-time augmentation; the gain paired by seed against
12,500 steps and its verdict against that baseline's seed spread land in sweep_results.md.

python -m siamese_jax.sweep --sweep=experiments/cpu_steps.py --workdir=runs/cpu_steps

Validating with TTA every epoch costs about a minute an epoch on a 2-core CPU.
"""

CONFIG = "configs/koch.py:cpu"
SEEDS = 3
RESOURCES = {"cpu": 2}  # one trial at a time on a 2-core machine
RULE = {
  "validation.protocol": "lake_runs",
  "validation.lake_runs": 2000,
  "validation.drawers": tuple(range(1, 21)),
  "validation.seed": 3,
  "validation.tta": True,
}
BASELINE = {**RULE, "train.max_epochs": 25}  # 12,500 steps of 500


def get_sweep():
  return [BASELINE, {**RULE, "train.max_epochs": 40}]
