"""Orbax checkpoints of the train state, written atomically; restore of the latest."""

from __future__ import annotations

import os

import jax
import orbax.checkpoint as ocp

CHECKPOINT_DIR = "checkpoints"


def manager(workdir: str, keep: int = 3, read_only: bool = False) -> ocp.CheckpointManager:
  """A manager over `<workdir>/checkpoints` keeping the last `keep` steps."""
  return ocp.CheckpointManager(
      os.path.abspath(os.path.join(workdir, CHECKPOINT_DIR)),
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
  """Parameters of the latest checkpoint in workdir (structure of `like_params`)."""
  if not os.path.isdir(os.path.join(workdir, CHECKPOINT_DIR)):
    raise FileNotFoundError(f"{workdir} has no {CHECKPOINT_DIR}/ (train first)")
  mngr = manager(workdir, read_only=True)
  step = mngr.latest_step()
  if step is None:
    raise FileNotFoundError(f"{workdir}/{CHECKPOINT_DIR} holds no complete checkpoint")
  restored = mngr.restore(step, args=ocp.args.StandardRestore())
  params = restored["params"]
  return jax.tree_util.tree_map(lambda a, b: jax.numpy.asarray(a, b.dtype), params, like_params)
