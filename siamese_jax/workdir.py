"""The workdir contract: what a run writes and reads besides metrics and figures.

A workdir holds `config.json` (the resolved config), `checkpoints/` (orbax train
states), `best/` (the best parameters by validation) and `.lock` (held by the
training process). Train, evaluate and the API read and write these only here.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import shutil
import socket

import ml_collections

from siamese_jax import defaults

CONFIG_FILE = "config.json"
LOCK_FILE = ".lock"
CHECKPOINT_DIR = "checkpoints"
BEST_DIR = "best"
PARAMS_FILE = "params.npz"  # exported parameters (a shipped model): plain arrays, no orbax needed
EVAL_FILE = "eval.json"  # the evaluation's results (`--mode=eval`)

# Keys that may change between runs on one workdir: they do not affect what is computed
# (conv_impl: the same convolution, another formulation, e.g. when moving to an accelerator).
RESUME_FREE_KEYS = ("eval.", "data.data_dir", "data.manual_dir", "train.log_every", "train.cpu_hint", "model.conv_impl")
# Write failures reported in one line (disk full, quota, read-only file system, permissions).
WRITE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO)


# Keys of earlier versions, ignored in a recorded config at their neutral value (None: any value).
# Their studies lost or tied (docs/results.md, "What helped and what did not"); 6041d62 is the
# last commit that has them.
RETIRED_KEYS = {
  "model.members": 1,
  "augment.class_mirrors": False,
  "train.ema_decay": 0.0,
  "train.ema_evaluate": None,
  "eval.tta_elastic": 0.0,
  "eval.tta_elastic_grid": None,
}


class WorkdirError(ValueError):
  """A workdir that cannot be used as asked (locked, damaged, another config, no parameters)."""


class WriteError(OSError):
  """A checkpoint or record could not be written (e.g. the disk is full)."""


# --- config.json -----------------------------------------------------------------------------


def write_config(config: ml_collections.ConfigDict, workdir: str) -> None:
  """Records the resolved config in `<workdir>/config.json` (atomically: a crash leaves the old one)."""
  path = os.path.join(workdir, CONFIG_FILE)
  tmp = path + ".tmp"
  with open(tmp, "w") as f:
    f.write(config.to_json_best_effort(indent=2, sort_keys=True))
  os.replace(tmp, path)


def read_config(workdir: str) -> ml_collections.ConfigDict:
  """The resolved config recorded in `<workdir>/config.json`; one-line errors when missing or damaged."""
  path = os.path.join(workdir, CONFIG_FILE)
  if not os.path.isdir(workdir):
    raise FileNotFoundError(f"no such workdir: {workdir}")
  if not os.path.exists(path):
    raise FileNotFoundError(f"{workdir} has no {CONFIG_FILE}: not a siamese_jax workdir")
  try:
    with open(path) as f:
      recorded = json.load(f)
  except (json.JSONDecodeError, UnicodeDecodeError) as e:
    raise WorkdirError(f"{path} is damaged (not valid JSON: {e})") from None
  if not isinstance(recorded, dict) or not isinstance(recorded.get("model"), dict):
    raise WorkdirError(f"{path} is damaged: it has no 'model' section")
  return with_defaults(recorded, path)


def with_defaults(recorded: dict, where: str) -> ml_collections.ConfigDict:
  """A recorded config over today's defaults: a key added since it was written has its default,
  a retired key at its neutral value is dropped (`RETIRED_KEYS`); one at another value is refused."""
  merged = defaults.default_config().to_dict()
  for key, value in flat_dict(recorded).items():
    if key in RETIRED_KEYS:
      neutral = RETIRED_KEYS[key]
      if neutral is not None and value != neutral:
        raise WorkdirError(f"{where}: {key}={value!r} is no longer supported (6041d62 is the last version with it)")
      continue
    node, *path = merged, *key.split(".")
    for part in path[:-1]:
      node = node.setdefault(part, {})
    node[path[-1]] = value
  return ml_collections.ConfigDict(merged)


def flat_dict(d: dict, prefix: str = "") -> dict:
  """Nested dict as flat {"a.b": value}."""
  out = {}
  for k, v in d.items():
    if isinstance(v, dict):
      out.update(flat_dict(v, f"{prefix}{k}."))
    else:
      out[f"{prefix}{k}"] = v
  return out


def check_resume(config: ml_collections.ConfigDict, workdir: str, allow_change: bool) -> list[str]:
  """Refuses to resume a workdir whose recorded config differs in a key that changes what is computed.

  Returns the differing keys (allowed with `allow_change`); raises WorkdirError otherwise.
  """
  path = os.path.join(workdir, CONFIG_FILE)
  if not os.path.exists(path):
    if os.path.isdir(os.path.join(workdir, CHECKPOINT_DIR)) and not allow_change:
      # e.g. a killed run that saved its checkpoint after its workdir was emptied.
      raise WorkdirError(
        f"{workdir} holds checkpoints but no {CONFIG_FILE} to check them against; pass"
        " --allow_config_change to resume anyway, or use a new --workdir"
      )
    return []
  # A key added to the defaults after the workdir was started had its default value there (`read_config`).
  old, new = (flat_dict(json.loads(c.to_json_best_effort())) for c in (read_config(workdir), config))
  diffs = [k for k in sorted(set(old) | set(new)) if not k.startswith(RESUME_FREE_KEYS) and old.get(k) != new.get(k)]
  if diffs and not allow_change:
    shown = ", ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in diffs[:5])
    raise WorkdirError(
      f"{workdir} was started with a different config ({shown}); pass"
      " --allow_config_change to resume anyway, or use a new --workdir"
    )
  return diffs


def with_recorded_model(config: ml_collections.ConfigDict, workdir: str) -> ml_collections.ConfigDict:
  """`config` with its model and training-data sections taken from `<workdir>/config.json`.

  The saved parameters fit the network they were trained with, whatever config an
  evaluation is given; its eval section (and the data locations) are kept.
  """
  try:
    recorded = read_config(workdir)
  except FileNotFoundError:
    return config
  config = ml_collections.ConfigDict(config.to_dict())
  for section in ("model", "data"):
    for k, v in recorded[section].items():
      if k in ("data_dir", "manual_dir"):
        continue
      config[section][k] = tuple(v) if isinstance(v, list) else v
  return config


# --- the lock ----------------------------------------------------------------------------------


@contextlib.contextmanager
def lock(workdir: str):
  """Holds an exclusive OS lock on `<workdir>/.lock` (flock: the kernel drops it when the process dies).

  A second holder gets WorkdirError naming the first one's pid and host.
  """
  os.makedirs(workdir, exist_ok=True)
  path = os.path.join(workdir, LOCK_FILE)
  fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
  try:
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
      if e.errno not in (errno.EWOULDBLOCK, errno.EACCES):
        raise
      holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
      raise WorkdirError(f"{workdir} is in use by {holder}; wait for it, stop it, or use another --workdir") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"pid {os.getpid()} on host {socket.gethostname()}\n".encode(), 0)
    yield
  finally:
    os.close(fd)  # closing the descriptor releases the lock


# --- checkpoints and parameters ----------------------------------------------------------------


def manager(workdir: str, keep: int = 3, read_only: bool = False, subdir: str = CHECKPOINT_DIR):
  """An orbax CheckpointManager over `<workdir>/<subdir>` keeping the last `keep` steps.

  Orbax writes each step to a temporary directory and renames it when complete, so a
  process killed while saving leaves no checkpoint that looks valid.
  """
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top

  return ocp.CheckpointManager(
    os.path.abspath(os.path.join(workdir, subdir)),
    options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=not read_only, read_only=read_only),
  )


def save(mngr, step: int, state) -> None:
  """Starts an (asynchronous, atomic) save of `state` at `step`; write failures become WriteError."""
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top

  try:
    mngr.save(step, args=ocp.args.StandardSave(state))
  except Exception as e:  # noqa: BLE001 - orbax wraps OS errors in its own types
    raise _as_write_error(e, mngr, state) from e


def wait(mngr, state=None) -> None:
  """Waits for pending saves; write failures become WriteError."""
  try:
    mngr.wait_until_finished()
  except Exception as e:  # noqa: BLE001
    raise _as_write_error(e, mngr, state) from e


def _as_write_error(e: Exception, mngr, state) -> Exception:
  import jax  # pylint: disable=g-import-not-at-top

  size = sum(getattr(x, "nbytes", 0) for x in jax.tree_util.tree_leaves(state)) if state is not None else 0
  return write_error(e, str(mngr.directory), size) or e


def restore_latest(mngr, like):
  """The latest complete checkpoint restored into the structure of `like`, or None."""
  import jax  # pylint: disable=g-import-not-at-top
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top

  step = mngr.latest_step()
  if step is None:
    return None
  abstract = jax.tree_util.tree_map(ocp.utils.to_shape_dtype_struct, like)
  return mngr.restore(step, args=ocp.args.StandardRestore(abstract))


def write_error(e: BaseException, path: str, wanted_bytes: int) -> WriteError | None:
  """A one-line WriteError when `e` (or its cause) is a file-system write failure, else None."""
  seen = set()
  while e is not None and id(e) not in seen:
    seen.add(id(e))
    if isinstance(e, OSError) and e.errno in WRITE_ERRNOS:
      try:
        free = shutil.disk_usage(_existing_parent(path)).free
      except OSError:
        free = -1
      return WriteError(
        e.errno,
        f"cannot write {path}: {os.strerror(e.errno)} (wanted about"
        f" {wanted_bytes / 2**20:.1f} MiB, {free / 2**20:.1f} MiB free); the last"
        " complete checkpoint is kept: free space and run the same command again",
      )
    e = e.__cause__ or e.__context__
  return None


def _existing_parent(path: str) -> str:
  while path and not os.path.exists(path):
    path = os.path.dirname(path)
  return path or "."


def export(workdir: str, out: str) -> str:
  """Writes the workdir's best parameters as `<out>/params.npz` with its config.json (data paths
  cleared) and eval.json: a self-contained model folder that `load_params` and `siamese_jax.load` read."""
  import numpy as np  # pylint: disable=g-import-not-at-top

  config = read_config(workdir)
  params = load_params(workdir, config.model)
  os.makedirs(out, exist_ok=True)
  np.savez(os.path.join(out, PARAMS_FILE), **{k.replace(".", "/"): np.asarray(v) for k, v in flat_dict(params).items()})
  config.data.data_dir, config.data.manual_dir = None, None
  write_config(config, out)
  if os.path.exists(os.path.join(workdir, EVAL_FILE)):
    shutil.copy(os.path.join(workdir, EVAL_FILE), os.path.join(out, EVAL_FILE))
  return out


def read_eval(workdir: str) -> dict | None:
  """The workdir's eval.json, or None where it has not been evaluated."""
  path = os.path.join(workdir, EVAL_FILE)
  if not os.path.exists(path):
    return None
  try:
    with open(path) as f:
      return json.load(f)
  except (OSError, ValueError) as e:
    raise WorkdirError(f"cannot read {path}: {str(e).splitlines()[0][:200]}") from None


def _load_npz(path: str) -> dict:
  import numpy as np  # pylint: disable=g-import-not-at-top

  try:
    with np.load(path) as f:
      flat = {k: f[k] for k in f.files}
  except Exception as e:  # noqa: BLE001 - a damaged archive raises many types
    raise WorkdirError(f"cannot read {path}: {str(e).splitlines()[0][:200]}") from None
  params: dict = {}
  for key, value in flat.items():
    layer, name = key.split("/", 1)
    params.setdefault(layer, {})[name] = value
  return params


def load_params(
  workdir: str, model_config: ml_collections.ConfigDict, subdir: str | None = None, step: int | None = None
):
  """The workdir's parameters: exported ones (params.npz), else the best by validation, else the latest.

  subdir ("best" or "checkpoints") and step pick one checkpoint instead (step None: that folder's
  latest). Checked against the shapes `model_config` gives; one-line WorkdirError on a mismatch
  or when there is none.
  """
  import jax  # pylint: disable=g-import-not-at-top

  from siamese_jax import model  # pylint: disable=g-import-not-at-top

  like = jax.eval_shape(lambda k: model.init(k, model_config), jax.random.PRNGKey(0))
  if subdir is None and os.path.exists(os.path.join(workdir, PARAMS_FILE)):
    return _checked(_load_npz(os.path.join(workdir, PARAMS_FILE)), like, os.path.join(workdir, PARAMS_FILE))
  for folder in (BEST_DIR, CHECKPOINT_DIR) if subdir is None else (subdir,):
    restored = _restore_params(workdir, folder, step)
    if restored is not None:
      return _checked(restored, like, os.path.join(workdir, folder))
  if subdir is not None:
    raise WorkdirError(f"{workdir} holds no checkpoint {'' if step is None else f'at step {step} '}in {subdir}")
  raise WorkdirError(f"{workdir} holds no complete checkpoint with parameters (train first)")


def _restore_params(workdir: str, subdir: str, step: int | None):
  """The parameters of `<workdir>/<subdir>` at `step` (None: the latest); None when there is none."""
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top

  if not os.path.isdir(os.path.join(workdir, subdir)):
    return None
  mngr = manager(workdir, read_only=True, subdir=subdir)
  try:
    if step is None:
      step = mngr.latest_step()
    elif step not in mngr.all_steps():
      step = None
    if step is None:
      return None
    try:
      return mngr.restore(step, args=ocp.args.StandardRestore())["params"]
    except Exception as e:  # noqa: BLE001 - orbax raises many types for a damaged checkpoint
      raise WorkdirError(
        f"cannot read {os.path.join(workdir, subdir)} step {step}: {str(e).splitlines()[0][:200]}"
      ) from e
  finally:
    mngr.close()


def _checked(params, like, where: str):
  """`params` as device arrays of `like`'s dtypes, once their names and shapes match `like`'s."""
  import jax  # pylint: disable=g-import-not-at-top

  got, want = _shapes(params), _shapes(like)
  if got != want:
    diff = next(k for k in sorted(set(got) | set(want)) if got.get(k) != want.get(k))
    raise WorkdirError(
      f"the parameters in {where} do not fit the network of {CONFIG_FILE}"
      f" ({diff}: {got.get(diff)} saved, {want.get(diff)} expected)"
    )
  return jax.tree_util.tree_map(lambda a, b: jax.numpy.asarray(a, b.dtype), params, like)


def _shapes(params) -> dict:
  """{"conv0.w": shape, ...} of a dict-of-dicts parameter pytree."""
  return {k: tuple(getattr(v, "shape", ())) for k, v in flat_dict(dict(params)).items()}
