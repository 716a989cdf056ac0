"""The folder data source on drawings the shipped model never trained on: Lake's ten test alphabets
written out as a grouped folder (382 classes x 20 images), trained from scratch against fine-tuned
from the shipped model, 3 seeds each, one class split (validation ranks; test for the winner only).

python -m siamese_jax.tools.omniglot_folder --out=runs/omniglot_test_alphabets \\
    --alphabets=Atlantean,Ge_ez,Glagolitic,Gurmukhi,Kannada,Malayalam,Manipuri,Old_Church_Slavonic_(Cyrillic),Tengwar,Tibetan
python -m siamese_jax.sweep --sweep=experiments/folder_finetune.py --workdir=runs/folder_finetune
"""

import os

FOLDER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "runs", "omniglot_test_alphabets")

CONFIG = "configs/folder.py"
SEEDS = 3
RESOURCES = {"cpu": 2}
BASELINE = {"data.dir": os.path.normpath(FOLDER)}


def get_sweep():
  return [BASELINE, {**BASELINE, "train.init_from": "pretrained"}]
