"""The workdir contract: no import cycle, the lock, write failures, one record per step."""

import ast
import errno
import json
import os
import signal
import subprocess
import sys

from conftest import ROOT, main_cmd, smoke_config
import jax
import orbax.checkpoint as ocp
import pytest

from siamese_jax import metrics, train, workdir

PACKAGE = os.path.join(ROOT, "siamese_jax")


def import_graph() -> dict[str, set[str]]:
  """module -> the siamese_jax modules it imports anywhere (top level or inside functions)."""
  graph = {}
  for dirpath, _, files in os.walk(PACKAGE):
    for f in files:
      if not f.endswith(".py"):
        continue
      rel = os.path.relpath(os.path.join(dirpath, f), ROOT)[:-3].replace(os.sep, ".").removesuffix(".__init__")
      deps = set()
      for node in ast.walk(ast.parse(open(os.path.join(dirpath, f)).read())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("siamese_jax"):
          deps |= {f"{node.module}.{a.name}" for a in node.names} | {node.module}
        elif isinstance(node, ast.Import):
          deps |= {a.name for a in node.names if a.name.startswith("siamese_jax")}
      graph[rel] = deps
  return {m: {d for d in deps if d in graph and d != m} for m, deps in graph.items()}


def find_cycle(graph):
  """One import cycle as a list of modules, or None (depth-first search)."""
  state, stack = {}, []

  def visit(m):
    state[m] = "open"
    stack.append(m)
    for d in sorted(graph[m]):
      if state.get(d) == "open":
        return stack[stack.index(d) :] + [d]
      if d not in state and (found := visit(d)):
        return found
    state[m] = "done"
    stack.pop()
    return None

  for m in sorted(graph):
    if m not in state and (found := visit(m)):
      return found
  return None


def test_no_import_cycle():
  graph = import_graph()
  assert {"siamese_jax.train", "siamese_jax.evaluate", "siamese_jax.api", "siamese_jax.workdir"} <= set(graph)
  # Package __init__ files re-export; a cycle through them is not one between modules.
  graph = {m: {d for d in deps if d not in ("siamese_jax", "siamese_jax.omniglot")} for m, deps in graph.items()}
  assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))
  assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]  # the check itself works


HOLD = (
  "import time; from siamese_jax import workdir\n"
  "with workdir.lock({wd!r}):\n  print('held', flush=True); time.sleep(600)\n"
)


def test_lock_names_the_holder_and_dies_with_it(tmp_path):
  wd = str(tmp_path / "run")
  with workdir.lock(wd):
    with pytest.raises(workdir.WorkdirError, match=rf"in use by pid {os.getpid()} on host \S+"):
      with workdir.lock(wd):
        pass
  holder = subprocess.Popen([sys.executable, "-c", HOLD.format(root=ROOT, wd=wd)], stdout=subprocess.PIPE, text=True)
  assert holder.stdout.readline().strip() == "held"
  with pytest.raises(workdir.WorkdirError, match=f"pid {holder.pid} "):
    with workdir.lock(wd):
      pass
  holder.send_signal(signal.SIGKILL)
  holder.wait()
  with workdir.lock(wd):  # the kernel released it: nothing stale is left behind
    pass


@pytest.mark.slow
def test_second_run_on_a_workdir_is_refused_in_one_line(tiny_omniglot, tmp_path):
  manual, _, _ = tiny_omniglot
  env = dict(os.environ, OMNIGLOT_DIR=manual, TFDS_DATA_DIR=str(tmp_path / "tfds"))
  wd = tmp_path / "run"
  first = subprocess.Popen(
    main_cmd(wd, "--config.train.max_epochs=200"), cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True
  )
  try:
    for line in first.stderr:
      if " step " in line:
        break
    second = subprocess.run(main_cmd(wd), cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert second.returncode == 2
    assert f"in use by pid {first.pid} on host" in second.stderr and "Traceback" not in second.stderr
  finally:
    first.kill()
    first.wait()


@pytest.mark.slow
def test_disk_full_during_checkpoint_is_one_line_and_keeps_the_last_one(tiny_omniglot, tmp_path, monkeypatch):
  real = ocp.CheckpointManager.save

  def save(self, step, *args, **kwargs):
    if step >= 10 and "best" not in str(self.directory):
      raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    return real(self, step, *args, **kwargs)

  monkeypatch.setattr(ocp.CheckpointManager, "save", save)
  wd = str(tmp_path / "run")
  with pytest.raises(
    workdir.WriteError,
    match=r"cannot write .*checkpoints: No space left on device \(wanted about"
    r" [\d.]+ MiB, [\d.]+ MiB free\); the last complete checkpoint is kept",
  ) as e:
    train.train(smoke_config(tiny_omniglot, log_every=1), wd)
  assert "\n" not in str(e.value)
  assert workdir.manager(wd, read_only=True).latest_step() == 5
  monkeypatch.undo()  # space freed: the rerun resumes from step 5 and keeps one record per step
  state, _ = train.train(smoke_config(tiny_omniglot, log_every=1), wd)
  assert int(state.step) == 30
  assert [r["step"] for r in metrics.read_metrics(wd) if "loss" in r] == list(range(1, 31))


def test_atomic_writes_leave_the_old_file_on_a_kill_and_no_temporary_behind(tmp_path):
  path = tmp_path / "eval.json"
  workdir.write_json(str(path), {"accuracy": 95.0})
  with pytest.raises(KeyboardInterrupt):  # a Ctrl-C in the middle of the write
    with workdir.atomic_file(str(path)) as f:
      f.write('{"accuracy": 9')
      raise KeyboardInterrupt
  assert json.loads(path.read_text()) == {"accuracy": 95.0}
  assert sorted(p.name for p in tmp_path.iterdir()) == ["eval.json"]


def test_unwritable_workdirs_are_named_before_any_work(tmp_path):
  assert workdir.unwritable(str(tmp_path / "new")) is None and (tmp_path / "new").is_dir()
  assert workdir.unwritable("/proc/siamese_run").startswith("cannot write in /proc/siamese_run")
  from configs import koch

  with pytest.raises(workdir.WorkdirError, match="cannot write in /proc/siamese_run: .*; train into a --workdir"):
    train.train(koch.get_config("smoke"), "/proc/siamese_run")


def test_a_batch_beyond_the_device_memory_is_refused_at_start_up(tmp_path):
  from configs import koch
  from siamese_jax import config_check

  cfg = koch.get_config("smoke")
  cfg.train.batch_size = 100_000_000
  with pytest.raises(config_check.ConfigError, match=r"config.train.batch_size: a step needs at least [\d,.]+ GiB"):
    train.train(cfg, str(tmp_path))
  assert not os.listdir(tmp_path)  # refused before anything was written


def test_a_damaged_best_falls_back_to_the_checkpoints_then_says_none_can_be_read(smoke_workdir, tmp_path):
  import shutil

  import numpy as np

  from siamese_jax import api

  wd = tmp_path / "run"
  shutil.copytree(smoke_workdir, wd)
  config = workdir.read_config(str(wd))
  want = workdir.load_params(str(wd), config.model, subdir=workdir.CHECKPOINT_DIR)
  for meta in (wd / workdir.BEST_DIR).glob("*/default/_METADATA"):
    meta.write_bytes(b"\0" * meta.stat().st_size)
  got = api.load(str(wd)).params  # best/ unreadable: the newest readable checkpoint instead
  for a, b in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want)):
    np.testing.assert_array_equal(a, b)
  assert any((wd / workdir.BEST_DIR).iterdir())  # read-only: nothing renamed or removed
  for meta in (wd / workdir.CHECKPOINT_DIR).glob("*/default/_METADATA"):
    meta.write_bytes(b"\0" * meta.stat().st_size)
  with pytest.raises(workdir.WorkdirError, match="no checkpoint in .* can be read .*train again") as e:
    api.load(str(wd))
  assert "\n" not in str(e.value)


def test_recorded_model_over_a_config_of_other_data():
  """Scoring the shipped (Omniglot) model on a folder keeps the folder's data section, not the model's."""
  from configs import folder, koch
  from siamese_jax import api

  cfg = folder.get_config()
  cfg.data.dir = "/somewhere"
  cfg.model.embed_dim = 7  # the recorded network wins
  merged = workdir.with_recorded_model(cfg, api.pretrained_workdir())
  assert merged.data.source == "folder" and merged.data.dir == "/somewhere" and merged.model.embed_dim == 512
  same = workdir.with_recorded_model(koch.get_config("smoke"), api.pretrained_workdir())
  assert same.data.extra_train_alphabets == tuple(koch.get_config("cpu").data.extra_train_alphabets)
