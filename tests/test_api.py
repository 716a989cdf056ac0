"""Python API, pair-scoring CLI, sweeps and the quickstart notebook."""

import os
import subprocess
import sys

import jax.numpy as jnp
import numpy as np
from PIL import Image
import pytest

import siamese_jax
from configs import koch
from conftest import ROOT, character_image
from siamese_jax import evaluate, oneshot, sweep, train


@pytest.fixture(scope="module")
def smoke_workdir(tiny_omniglot, tmp_path_factory):
  _, data_dir, _ = tiny_omniglot
  cfg = koch.get_config("smoke")
  cfg.data.data_dir = data_dir
  cfg.train.max_epochs = 3
  cfg.eval.num_tasks = 20
  workdir = str(tmp_path_factory.mktemp("smoke"))
  train.train_and_evaluate(cfg, workdir)
  return workdir


def write_png(path, label, drawer, size=105):
  Image.fromarray(character_image(label, drawer, size)).convert("1").save(path)
  return str(path)


def test_similarity_symmetric_in_unit_interval_for_every_input_kind(smoke_workdir, tmp_path):
  net = siamese_jax.load(smoke_workdir)
  a = write_png(tmp_path / "a.png", 3, 1)
  b_img = Image.open(write_png(tmp_path / "b.png", 3, 2))
  c_u8 = (character_image(5, 4).astype(np.uint8) * 255)  # uint8 [105, 105]
  d_float = np.asarray(Image.fromarray(character_image(6, 1)).resize((70, 70)), np.float32)  # float, 70x70
  images = [a, b_img, c_u8, d_float]
  p = net.similarity(images, images[::-1])
  q = net.similarity(images[::-1], images)
  assert p.shape == (4,) and np.all((p >= 0) & (p <= 1))
  np.testing.assert_allclose(p, q, rtol=1e-6)
  assert net.embed(images).shape == (4, net.config.model.embed_dim)


def test_one_shot_agrees_with_evaluator(smoke_workdir, tiny_omniglot):
  _, data_dir, _ = tiny_omniglot
  net = siamese_jax.load(smoke_workdir)
  chars = evaluate.load_eval_characters(net.config, "evaluation")
  raw = siamese_jax.load_dataset("evaluation", data_dir=data_dir)
  tasks, _ = oneshot.make_tasks(chars.alphabets, len(chars.drawers), "across_alphabet", 5, 1, 6, seed=4)
  scorer = oneshot.model_scorer(net.params)
  table, remap, _ = oneshot.EmbeddedSet(scorer, chars.images).embed(tasks.query, tasks.support)
  want = np.asarray(oneshot.task_scores(scorer, table, jnp.asarray(remap(tasks.query)),
                                        jnp.asarray(remap(tasks.support))))
  preds = oneshot.predict(scorer, table, remap, tasks)

  def raw_image(flat):  # The same image, from the unresized split.
    c, d = divmod(int(flat), len(chars.drawers))
    i = np.flatnonzero((raw["label"] == chars.labels[c]) & (raw["drawer"] == chars.drawers[d]))[0]
    return raw["image"][i]

  for t in range(6):
    got = net.one_shot(raw_image(tasks.query[t]), [raw_image(s[0]) for s in tasks.support[t]])
    np.testing.assert_allclose(got["scores"], want[t], rtol=1e-4, atol=1e-5)
    assert got["prediction"] == preds[t]


def _compare(*args):
  return subprocess.run([sys.executable, "-m", "siamese_jax.compare", *args], cwd=ROOT, capture_output=True,
                        text=True, timeout=300)


def test_compare_cli(smoke_workdir, tmp_path):
  a, b = write_png(tmp_path / "a.png", 3, 1), write_png(tmp_path / "b.png", 3, 2)
  ok = _compare(a, b, f"--workdir={smoke_workdir}")
  assert ok.returncode == 0, ok.stderr[-2000:]
  assert 0.0 <= float(ok.stdout.strip()) <= 1.0
  missing = _compare(a, str(tmp_path / "nope.png"), f"--workdir={smoke_workdir}")
  assert missing.returncode == 2 and "no such image file" in missing.stderr
  (tmp_path / "bad.png").write_text("not an image")
  bad = _compare(a, str(tmp_path / "bad.png"), f"--workdir={smoke_workdir}")
  assert bad.returncode == 2 and "cannot read" in bad.stderr
  empty = tmp_path / "empty_workdir"
  empty.mkdir()
  (empty / "config.json").write_text(open(os.path.join(smoke_workdir, "config.json")).read())
  noparams = _compare(a, b, f"--workdir={empty}")
  assert noparams.returncode == 2 and "no complete checkpoint" in noparams.stderr


def test_grid_and_names():
  members = sweep.grid({"train.fixed_pairs": [30_000, 90_000, 150_000], "augment.enabled": [False, True]})
  assert len(members) == 6 and members[1] == {"train.fixed_pairs": 30_000, "augment.enabled": True}
  assert sweep.member_name(4, {"model.features": (8, 16)}) == "004_features=8,16"
  cmd = sweep.member_command("configs/koch.py:cpu", {"_mode": "eval", "eval.shots": 5}, "w")
  assert cmd[-3:] == ["--workdir=w", "--mode=eval", "--config.eval.shots=5"]


def test_dry_run_prints_one_command_per_member(tmp_path):
  proc = subprocess.run([sys.executable, "-m", "siamese_jax.sweep", "--sweep=experiments/koch_table1.py",
                         f"--workdir={tmp_path}", "--dry_run"], cwd=ROOT, capture_output=True, text=True)
  lines = proc.stdout.strip().splitlines()
  assert proc.returncode == 0 and len(lines) == 6
  assert all("siamese_jax.main --config=configs/koch.py" in line for line in lines)
  assert "--config.train.fixed_pairs=150000 --config.augment.enabled=True" in lines[-1]
  one = subprocess.run([sys.executable, "-m", "siamese_jax.sweep", "--sweep=experiments/lr.py",
                        f"--workdir={tmp_path}", "--dry_run", "--only=4"], cwd=ROOT, capture_output=True, text=True)
  assert len(one.stdout.strip().splitlines()) == 1 and "learning_rate=0.001" in one.stdout


SWEEP_FILE = '''
CONFIG = "configs/koch.py:smoke"

def get_sweep():
  return [{"train.learning_rate": 0.003}, {"train.learning_rate": -1.0}, {"train.learning_rate": 0.01}]
'''


def test_sweep_runs_skips_resumes_and_records_failures(tiny_omniglot, tmp_path, monkeypatch):
  manual, _, _ = tiny_omniglot
  monkeypatch.setenv("OMNIGLOT_DIR", manual)
  monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))
  sweep_file = tmp_path / "s.py"
  sweep_file.write_text(SWEEP_FILE)
  workdir = tmp_path / "sweep"
  extra = ["--config.train.max_epochs=1", "--config.eval.num_tasks=10", "--config.eval.ways=(2,5)"]
  # Member 2 was interrupted earlier: trained part-way, never evaluated.
  _, members = sweep.load_sweep(str(sweep_file))
  m2 = workdir / sweep.member_name(2, members[2])
  pre = subprocess.run(sweep.member_command("configs/koch.py:smoke", members[2], str(m2),
                                            extra[1:] + ["--config.train.max_epochs=1", "--mode=train"]),
                       cwd=ROOT, capture_output=True, text=True)
  assert pre.returncode == 0, pre.stderr[-2000:]
  log = []
  monkeypatch.chdir(ROOT)
  status = sweep.run_sweep(str(sweep_file), str(workdir), extra=extra, log=log.append)
  states = [status[sweep.member_name(i, m)]["state"] for i, m in enumerate(members)]
  assert states == ["finished", "failed", "finished"]
  assert "config.train.learning_rate: must be > 0" in status[sweep.member_name(1, members[1])]["error"]
  assert "resumed from step" in (m2 / "log.txt").read_text()
  table = (workdir / "sweep_results.md").read_text()
  assert table.count("| finished |") == 2 and "| failed |" in table
  rows = list(__import__("csv").DictReader(open(workdir / "sweep_results.csv")))
  assert rows[0]["lake_accuracy"] and not rows[1]["lake_accuracy"]
  assert (workdir / "sweep_lake.png").exists()
  log.clear()
  sweep.run_sweep(str(sweep_file), str(workdir), extra=extra, log=log.append, only=0)
  assert log == [f"[0] {sweep.member_name(0, members[0])}: finished, skipped"]


def test_quickstart_notebook_runs(smoke_workdir, tiny_omniglot, monkeypatch):
  nbformat = pytest.importorskip("nbformat")
  nbclient = pytest.importorskip("nbclient")
  _, data_dir, _ = tiny_omniglot
  monkeypatch.setenv("SIAMESE_WORKDIR", smoke_workdir)
  monkeypatch.setenv("TFDS_DATA_DIR", data_dir)
  monkeypatch.setenv("MPLBACKEND", "Agg")
  monkeypatch.setenv("PYTHONPATH", ROOT)
  nb = nbformat.read(os.path.join(ROOT, "notebooks", "quickstart.ipynb"), as_version=4)
  nbclient.NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": ROOT}}).execute()
  outputs = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
  assert "predicted class" in outputs and "symmetric" in outputs
