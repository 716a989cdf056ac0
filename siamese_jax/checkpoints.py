"""Orbax checkpoints of the train state (written atomically), and of the best parameters."""

from __future__ import annotations

import os

import jax
import orbax.checkpoint as ocp

CHECKPOINT_DIR = "checkpoints"
BEST_DIR = "best"


def manager(workdir: str, keep: int = 3, read_only: bool = False,
            subdir: str = CHECKPOINT_DIR) -> ocp.CheckpointManager:
  """A manager over `<workdir>/<subdir>` keeping the last `keep` steps."""
  return ocp.CheckpointManager(
      os.path.abspath(os.path.join(workdir, subdir)),
      options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=not read_only, read_only=read_only),
  )


def save(mngr: ocp.CheckpointManager, step: int, state) -> None:
  """Starts an (asynchronous, atomic) save of `state` at `step`."""
  mngr.save(step, args=ocp.args.StandardSave(state))


def restore_latest(mngr: ocp.CheckpointManager, like):
  """The latest complete checkpoint restored into the structure of `like`, or None."""
  step = mngr.latest_step()
  if step is None:
    return None
  abstract = jax.tree_util.tree_map(ocp.utils.to_shape_dtype_struct, like)
  return mngr.restore(step, args=ocp.args.StandardRestore(abstract))


def load_params(workdir: str, like_params):
  """The workdir's best parameters (by validation), else those of its latest checkpoint."""
  for subdir in (BEST_DIR, CHECKPOINT_DIR):
    if not os.path.isdir(os.path.join(workdir, subdir)):
      continue
    mngr = manager(workdir, read_only=True, subdir=subdir)
    step = mngr.latest_step()
    if step is None:
      continue
    restored = mngr.restore(step, args=ocp.args.StandardRestore())
    mngr.close()
    return jax.tree_util.tree_map(lambda a, b: jax.numpy.asarray(a, b.dtype), restored["params"], like_params)
  raise FileNotFoundError(f"{workdir} holds no complete checkpoint with parameters (train first)")
