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
import tempfile

import ml_collections

from siamese_jax import defaults

CONFIG_FILE = "config.json"
LOCK_FILE = ".lock"
CHECKPOINT_DIR = "checkpoints"
BEST_DIR = "best"
PARAMS_FILE = "params.npz"  # exported parameters (a shipped model): plain arrays, no orbax needed
EVAL_FILE = "eval.json"  # the evaluation's results (`--mode=eval`)
DATA_FILE = "data.json"  # a folder data set's split, classes left out and files skipped

# Keys that may change between runs on one workdir: they do not affect what is computed
# (conv_impl: the same convolution, another formulation, e.g. when moving to an accelerator).
RESUME_FREE_KEYS = ("eval.", "data.data_dir", "data.manual_dir", "train.log_every", "train.cpu_hint", "model.conv_impl")
# Write failures reported in one line (disk full, quota, read-only file system, permissions).
WRITE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO)


# Keys of earlier versions, ignored in a recorded config at their neutral value (None: any value).
# Their studies lost or tied (docs/results.md, "How the presets were chosen"); 6041d62 is the
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


# --- atomic writes -----------------------------------------------------------------------------


def _read_umask() -> int:
  mask = os.umask(0o22)
  os.umask(mask)
  return mask


_UMASK = _read_umask()  # read once at import: os.umask can only be read by setting it, which races with threads


@contextlib.contextmanager
def atomic_file(path: str, mode: str = "w"):
  """A file whose content replaces `path` only once complete: written to a temporary file in the same
  folder, flushed to disk, then renamed over `path`. A kill or an error leaves the old file (or none)."""
  fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)), prefix=f".{os.path.basename(path)}.")
  try:
    os.chmod(tmp, 0o666 & ~_UMASK)  # what open() would give, not mkstemp's owner-only 0600
    with os.fdopen(fd, mode) as f:
      yield f
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, path)
  except BaseException:
    with contextlib.suppress(OSError):
      os.remove(tmp)
    raise


def unwritable(workdir: str) -> str | None:
  """Why files cannot be written in `workdir` (made if missing), or None when they can: a probe
  file is created and removed, so read-only mounts, immutable folders and permissions all show."""
  try:
    os.makedirs(workdir, exist_ok=True)
    fd, probe = tempfile.mkstemp(dir=workdir, prefix=".write_probe.")
    os.close(fd)
    os.remove(probe)
  except OSError as e:
    return f"cannot write in {workdir}: {e.strerror or e}"
  return None


def write_json(path: str, value) -> None:
  """`value` as indented JSON at `path`, atomically."""
  with atomic_file(path) as f:
    json.dump(value, f, indent=2)


# --- config.json -----------------------------------------------------------------------------


def write_config(config: ml_collections.ConfigDict, workdir: str) -> None:
  """Records the resolved config in `<workdir>/config.json` (atomically: a crash leaves the old one)."""
  with atomic_file(os.path.join(workdir, CONFIG_FILE)) as f:
    f.write(config.to_json_best_effort(indent=2, sort_keys=True))


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
    if isinstance(node.get(path[-1]), tuple) and isinstance(value, (int, float, str)):
      value = [value]  # a key that became a tuple (eval.shots): its recorded value is its one entry
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
  evaluation is given; its eval section (and the data locations) are kept. A config of other data
  (another `data.source` or `data.dir`: the shipped model scored on a folder) keeps its data section.
  """
  try:
    recorded = read_config(workdir)
  except FileNotFoundError:
    return config
  config = ml_collections.ConfigDict(config.to_dict())
  same_data = (recorded.data.source, recorded.data.dir) == (config.data.source, config.data.dir)
  for section in ("model", "data") if same_data else ("model",):
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


DAMAGED_SUFFIX = ".damaged"  # a checkpoint that cannot be read is renamed aside, never deleted


def restore_latest(mngr, like):
  """The newest readable checkpoint restored into the structure of `like`, or None when there is none.

  A checkpoint that cannot be read (a truncated or zeroed file) is renamed `<step>.damaged` with one
  warning line and the next older one is tried; WorkdirError when checkpoints exist but none can be read.
  """
  import jax  # pylint: disable=g-import-not-at-top
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top

  abstract = jax.tree_util.tree_map(ocp.utils.to_shape_dtype_struct, like)
  steps = sorted(mngr.all_steps(), reverse=True)
  for step in steps:
    try:
      return mngr.restore(step, args=ocp.args.StandardRestore(abstract))
    except Exception as e:  # noqa: BLE001 - orbax and TensorStore raise many types for a damaged file
      _set_aside(str(mngr.directory), step, e)
      mngr.reload()
  if steps:
    raise WorkdirError(
      f"no checkpoint in {mngr.directory} can be read (each renamed *{DAMAGED_SUFFIX}); run with a new --workdir"
    )
  return None


def _first_line(e: BaseException) -> str:
  lines = [line for line in str(e).splitlines() if line.strip()]
  return f"{type(e).__name__}: {lines[0][:160] if lines else ''}"


def _set_aside(directory: str, step: int, e: BaseException) -> None:
  """Renames a damaged checkpoint `<directory>/<step>` to `<step>.damaged`, with one warning line."""
  from absl import logging  # pylint: disable=g-import-not-at-top

  src = os.path.join(directory, str(step))
  dst = src + DAMAGED_SUFFIX
  k = 1
  while os.path.exists(dst):
    dst, k = f"{src}{DAMAGED_SUFFIX}{k}", k + 1
  os.replace(src, dst)
  logging.warning("skipping damaged checkpoint %s (%s); renamed to %s", src, _first_line(e), os.path.basename(dst))


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
  cleared) and eval.json: a self-contained model folder that `load_params` and `siamese_jax.load` read.

  The folder is written whole beside `out` and then swapped in: a kill leaves the old folder (or,
  between the two renames, `<out>.old` beside no `out`), never a mix of old and new files.
  """
  import numpy as np  # pylint: disable=g-import-not-at-top

  config = read_config(workdir)
  params = load_params(workdir, config.model)
  results = read_eval(workdir)  # refuses a damaged eval.json rather than copying it
  out = os.path.abspath(out)
  os.makedirs(os.path.dirname(out), exist_ok=True)
  new = tempfile.mkdtemp(dir=os.path.dirname(out), prefix=f".{os.path.basename(out)}.")
  try:
    with atomic_file(os.path.join(new, PARAMS_FILE), "wb") as f:
      np.savez(f, **{k.replace(".", "/"): np.asarray(v) for k, v in flat_dict(params).items()})
    config.data.data_dir, config.data.manual_dir = None, None
    write_config(config, new)
    if results is not None:
      write_json(os.path.join(new, EVAL_FILE), results)
    os.chmod(new, 0o755)
    old = out + ".old"
    if os.path.exists(out):
      shutil.rmtree(old, ignore_errors=True)
      os.replace(out, old)
    os.replace(new, out)
    shutil.rmtree(old, ignore_errors=True)
  except BaseException:
    shutil.rmtree(new, ignore_errors=True)
    raise
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
  errors = []
  for folder in (BEST_DIR, CHECKPOINT_DIR) if subdir is None else (subdir,):
    try:
      restored = _restore_params(workdir, folder, step)
    except WorkdirError as e:
      errors.append(str(e))
      continue
    if restored is not None:
      return _checked(restored, like, os.path.join(workdir, folder))
  if errors:
    raise WorkdirError("; ".join(errors) + ": train again with a new --workdir")
  if subdir is not None:
    raise WorkdirError(f"{workdir} holds no checkpoint {'' if step is None else f'at step {step} '}in {subdir}")
  raise WorkdirError(f"{workdir} holds no complete checkpoint with parameters (train first)")


def checkpoint_steps(workdir: str, subdir: str = CHECKPOINT_DIR) -> list[int]:
  """The steps of the complete checkpoints in `<workdir>/<subdir>`, oldest first ([] when none)."""
  if not os.path.isdir(os.path.join(workdir, subdir)):
    return []
  mngr = manager(workdir, read_only=True, subdir=subdir)
  try:
    return sorted(int(s) for s in mngr.all_steps())
  finally:
    mngr.close()


def _restore_params(workdir: str, subdir: str, step: int | None):
  """The parameters of `<workdir>/<subdir>` at `step` (None: the latest); None when there is none."""
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top

  if not os.path.isdir(os.path.join(workdir, subdir)):
    return None
  from absl import logging  # pylint: disable=g-import-not-at-top

  mngr = manager(workdir, read_only=True, subdir=subdir)
  try:
    steps = sorted(mngr.all_steps(), reverse=True) if step is None else [step] if step in mngr.all_steps() else []
    errors = []
    for s in steps:
      try:
        return mngr.restore(s, args=ocp.args.StandardRestore())["params"]
      except Exception as e:  # noqa: BLE001 - orbax raises many types for a damaged checkpoint
        errors.append(f"{s}: {_first_line(e)}")
        logging.warning("skipping damaged checkpoint %s (%s)", os.path.join(workdir, subdir, str(s)), _first_line(e))
    if errors:
      raise WorkdirError(f"no checkpoint in {os.path.join(workdir, subdir)} can be read ({'; '.join(errors)})")
    return None
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
