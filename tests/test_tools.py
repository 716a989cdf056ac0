"""Tools: learning curves over workdirs, the TTA study's drawer ranges."""

import subprocess
import sys

import pytest


@pytest.mark.slow
def test_learning_curves_script_tables_every_epoch(smoke_workdir, tmp_path):
  out = tmp_path / "curves.png"
  script = [sys.executable, "-m", "siamese_jax.tools.learning_curves"]
  ok = subprocess.run([*script, f"smoke={smoke_workdir}", f"--out={out}"], capture_output=True, text=True)
  assert ok.returncode == 0, ok.stderr[-2000:]
  rows = [line for line in ok.stdout.splitlines() if line.startswith("| ") and line[2].isdigit()]
  assert [int(r.split("|")[1]) for r in rows] == [1, 2, 3]  # max_epochs = 3, one row each
  assert "**smoke**" in ok.stdout and out.stat().st_size > 0
  bad = subprocess.run([*script, str(tmp_path)], capture_output=True, text=True)
  assert bad.returncode != 0 and "not a training workdir" in bad.stderr


def test_tta_script_reads_drawer_ranges():
  from siamese_jax.tools import tta

  assert tta.drawer_list(["1-20"]) == list(range(1, 21))
  assert tta.drawer_list(["13", "15-16"]) == [13, 15, 16]
  assert tta.drawer_list(None) is None
