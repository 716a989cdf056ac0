"""N-way k-shot one-shot tasks: deterministic generation and embed-once scoring.

A task holds one query image and N candidate classes with k support images each.
The query's class sits at a uniformly random position among the N candidates, so
ties (argmax picks the first maximum) never favour the truth: a constant scorer
gets about 1/N. Images are referred to by flat index `char * D + drawer` into a
`CharacterArray` images [C, D, H, W, 1].
"""

from __future__ import annotations

from collections.abc import Callable
import dataclasses
import functools
import math
import types
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

WITHIN_ALPHABET = "within_alphabet"
ACROSS_ALPHABET = "across_alphabet"
PROTOCOLS = (WITHIN_ALPHABET, ACROSS_ALPHABET)


class Tasks(NamedTuple):
  """A batch of T tasks of N ways and k shots (flat image indices)."""

  query: np.ndarray  # int [T]
  support: np.ndarray  # int [T, N, k]
  target: np.ndarray  # int [T], position of the query's class among the N.
  chars: np.ndarray  # int [T, N], the candidate characters.


@dataclasses.dataclass(frozen=True)
class TaskSpec:
  """What a set of tasks is: protocol, N, k and how many were drawn."""

  protocol: str
  n_way: int
  shots: int
  num_tasks: int
  eligible_alphabets: int


def shot_counts(shots) -> tuple[int, ...]:
  """`eval.shots` as a tuple of k: one number or a tuple of them."""
  return tuple(shots) if isinstance(shots, (tuple, list)) else (shots,)


def make_tasks(
  alphabets: np.ndarray,
  num_drawers: int,
  protocol: str,
  n_way: int,
  shots: int,
  num_tasks: int,
  seed: int,
) -> tuple[Tasks, TaskSpec]:
  """Draws `num_tasks` N-way k-shot tasks over characters with alphabet ids `alphabets` [C].

  within_alphabet: an alphabet is drawn uniformly among those with at least N
  characters (the others are skipped; with none eligible no task is drawn), then N
  of its characters. across_alphabet: N characters from the whole set. Per task,
  k + 1 distinct drawers are drawn: k for the support of every class, one for the
  query. Deterministic for a given seed.
  """
  if protocol not in PROTOCOLS:
    raise ValueError(f"protocol {protocol!r}; choose from {PROTOCOLS}")
  if shots + 1 > num_drawers:
    raise ValueError(f"{shots}-shot tasks need {shots + 1} drawers, have {num_drawers}")
  rng = np.random.default_rng(seed)
  ids, counts = np.unique(alphabets, return_counts=True)
  if protocol == WITHIN_ALPHABET:
    pools = [np.flatnonzero(alphabets == a) for a, n in zip(ids, counts) if n >= n_way]
  else:
    pools = [np.arange(len(alphabets))] if len(alphabets) >= n_way else []
  spec = TaskSpec(
    protocol, n_way, shots, num_tasks if pools else 0, len(pools) if protocol == WITHIN_ALPHABET else len(ids)
  )
  if not pools:
    empty = np.zeros((0,), np.int64)
    return Tasks(empty, np.zeros((0, n_way, shots), np.int64), empty, np.zeros((0, n_way), np.int64)), spec
  pool_of_task = rng.integers(0, len(pools), num_tasks)
  chars = np.stack([rng.choice(pools[p], n_way, replace=False) for p in pool_of_task])
  drawers = np.stack([rng.choice(num_drawers, shots + 1, replace=False) for _ in range(num_tasks)])
  target = rng.integers(0, n_way, num_tasks)
  query = chars[np.arange(num_tasks), target] * num_drawers + drawers[:, shots]
  support = chars[:, :, None] * num_drawers + drawers[:, None, :shots]
  return Tasks(query, support, target, chars), spec


@dataclasses.dataclass(frozen=True)
class Scorer:
  """A way to score pairs: embed(params, images [B,H,W,1]) -> [B, F]; pair(params, a, b) -> score.

  `pair` broadcasts over leading axes of its [..., F] arguments and must be
  symmetric; a higher score means "more likely the same character".
  """

  name: str
  embed: Callable[[Any, jax.Array], jax.Array]
  pair: Callable[[Any, jax.Array, jax.Array], jax.Array]
  params: Any = None

  @property
  def jitted_embed(self):
    return _jit(self.embed)


# One jitted function per embed function: a scorer rebuilt every epoch with new
# parameters reuses the compiled code (see `model_scorer`).
_jit = functools.lru_cache(maxsize=None)(jax.jit)


def pixel_scorer() -> Scorer:
  """Pixel-space nearest neighbour: score = -squared Euclidean distance of ink images."""
  from siamese_jax import model  # pylint: disable=g-import-not-at-top

  return Scorer(
    name="pixel_1nn",
    embed=lambda _, x: model.preprocess(x).reshape(x.shape[0], -1),
    pair=lambda _, a, b: -jnp.sum((a - b) ** 2, axis=-1),
  )


def model_scorer(params, spec, dtype=jnp.float32, conv_impl: str = "auto") -> Scorer:
  """The Siamese network of structure `spec` (`model.Spec`): embed = encode, score = head logit on |e1 - e2|.

  The embed function is shared by every scorer of the same spec, dtype and conv_impl, so it
  is compiled once per process, not once per call.
  """
  from siamese_jax import model  # pylint: disable=g-import-not-at-top

  dtype = model.compute_dtype(jnp.dtype(dtype).name)[0]
  return Scorer(
    name="model", embed=_model_embed(spec, dtype.name, conv_impl), pair=_head_pair(spec.head), params=params
  )


def config_scorer(params, model_config) -> Scorer:
  """`model_scorer` of `params` with the structure, dtype and conv_impl of a config's model section."""
  from siamese_jax import model  # pylint: disable=g-import-not-at-top

  return model_scorer(params, model.spec(model_config), model_config.dtype, model_config.conv_impl)


@functools.cache
def _head_pair(head: str):
  """The pair logit of one head, one function object per head: jitted callers share their compilations."""
  from siamese_jax import model  # pylint: disable=g-import-not-at-top

  return functools.partial(model.pair_logits, head=head)


@functools.cache
def _model_embed(spec, dtype: str, conv_impl: str):
  from siamese_jax import model  # pylint: disable=g-import-not-at-top

  return lambda p, x: model.encode(p, x, spec, jnp.dtype(dtype), conv_impl)


# The fields of an augment config that `augment.sample` reads.
_RANGE_FIELDS = ("theta", "shear", "scale_min", "scale_max", "translate", "prob")


def tta_scorer(base: Scorer, copies: int, ranges, seed: int = 0) -> Scorer:
  """Test-time augmentation of `base`: each image is embedded as itself and as `copies - 1` fixed
  distortions (the same ones for every image, drawn from `ranges`, an augment config, with `seed`);
  a pair's score is the mean of `base.pair` over the copies x copies pairs of the two images' versions.

  embed -> [B, copies * F]; the pair stays symmetric. copies <= 1 returns `base`.
  """
  if copies <= 1:
    return base
  values = tuple(float(getattr(ranges, f)) for f in _RANGE_FIELDS)
  return dataclasses.replace(
    base, embed=_tta_embed(base.embed, copies, values, seed), pair=_tta_pair(base.pair, copies)
  )


def tta_from_config(base: Scorer, augment_config, eval_config) -> Scorer:
  """`tta_scorer` of `base` as an eval config sets it (tta_copies, tta_strength x the augment
  config's ranges, tta_seed)."""
  from siamese_jax import augment  # pylint: disable=g-import-not-at-top

  e = eval_config
  return tta_scorer(base, int(e.tta_copies), augment.scaled(augment_config, float(e.tta_strength)), int(e.tta_seed))


@functools.cache
def _tta_embed(embed, copies: int, ranges: tuple, seed: int):
  from siamese_jax import augment  # pylint: disable=g-import-not-at-top

  dist = augment.sample(
    jax.random.PRNGKey(seed), (copies - 1,), types.SimpleNamespace(**dict(zip(_RANGE_FIELDS, ranges)))
  )

  def tta_embed(params, x):
    # One distortion at a time (lax.map): the memory of a plain embed call, not copies times it.
    warped = jax.lax.map(lambda a: embed(params, jax.vmap(augment.warp, in_axes=(0, None))(x, a)), dist)
    e = jnp.concatenate([embed(params, x)[None], warped])  # [copies, B, F]
    return e.transpose(1, 0, 2).reshape(x.shape[0], -1)

  return tta_embed


@functools.cache
def _tta_pair(pair, copies: int):
  def tta_pair(params, a, b):
    a, b = a.reshape(a.shape[:-1] + (copies, -1)), b.reshape(b.shape[:-1] + (copies, -1))

    def add(k, total):  # one (copy of a, copy of b) at a time: the memory of one plain pair call
      ai = jax.lax.dynamic_index_in_dim(a, k // copies, axis=-2, keepdims=False)
      bj = jax.lax.dynamic_index_in_dim(b, k % copies, axis=-2, keepdims=False)
      return total + pair(params, ai, bj)

    zero = jnp.zeros(jnp.broadcast_shapes(a.shape[:-2], b.shape[:-2]), jnp.float32)
    return jax.lax.fori_loop(0, copies * copies, add, zero) / copies**2

  return tta_pair


def embed_images(scorer: Scorer, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
  """Embeds images [U, H, W, 1] in fixed-size jitted batches; returns [U, F]."""
  fn = scorer.jitted_embed
  out = []
  for i in range(0, len(images), batch_size):
    chunk = images[i : i + batch_size]
    n = len(chunk)
    if n < batch_size and len(images) > batch_size:  # Pad: one compiled shape only.
      chunk = np.concatenate([chunk, np.zeros((batch_size - n,) + chunk.shape[1:], chunk.dtype)])
    out.append(np.asarray(fn(scorer.params, jnp.asarray(chunk)))[:n])
  return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


def task_scores(scorer: Scorer, table: jax.Array, query: jax.Array, support: jax.Array) -> jax.Array:
  """Class scores [T, N] = mean over k of pair(query, support) from an embedding table [U, F]."""
  return _task_scores(scorer.pair, scorer.params, table, query, support)


def _task_scores_impl(pair, params, table, query, support):
  q = table[query]  # [T, F]
  s = table[support]  # [T, N, k, F]
  return jnp.mean(pair(params, q[:, None, None, :], s), axis=-1)


_task_scores = jax.jit(_task_scores_impl, static_argnums=0)


class EmbeddedSet:
  """Embeds the images of a CharacterArray that tasks refer to, each exactly once."""

  def __init__(self, scorer: Scorer, images: np.ndarray, batch_size: int = 256):
    self.scorer, self.batch_size = scorer, batch_size
    self.flat = images.reshape((-1,) + images.shape[2:])  # [C * D, H, W, 1]
    self.num_drawers = images.shape[1]

  def embed(self, *index_arrays: np.ndarray):
    """Returns (table [U, F] on device, remap) where remap(idx) gives rows of the table."""
    unique = np.unique(np.concatenate([a.ravel() for a in index_arrays]))
    table = jnp.asarray(embed_images(self.scorer, self.flat[unique], self.batch_size))
    lookup = np.full(len(self.flat), -1, np.int64)
    lookup[unique] = np.arange(len(unique))
    return table, (lambda idx: lookup[idx]), len(unique)


def make_lake_format_runs(
  alphabets: np.ndarray, num_drawers: int, num_runs: int, seed: int, n_way: int = 20
) -> tuple[Tasks, np.ndarray]:
  """`num_runs` fresh runs in the format of Lake's official ones, as tasks; and each run's alphabet [R].

  A run: one alphabet (drawn uniformly among those with at least `n_way` characters),
  `n_way` of its characters, two distinct drawers; the first drawer's images are the
  support, each character's image by the second drawer is one query. So a run is
  `n_way` tasks sharing one support, in a shuffled order; tasks are [R * n_way], run-major.
  """
  rng = np.random.default_rng(seed)
  ids, counts = np.unique(alphabets, return_counts=True)
  eligible = ids[counts >= n_way]
  if not len(eligible) or num_runs == 0:
    empty = np.zeros((0,), np.int64)
    return Tasks(empty, np.zeros((0, n_way, 1), np.int64), empty, np.zeros((0, n_way), np.int64)), empty
  run_alphabet = rng.choice(eligible, num_runs)
  query, support, target, chars = [], [], [], []
  for a in run_alphabet:
    cs = rng.choice(np.flatnonzero(alphabets == a), n_way, replace=False)  # support order
    d_support, d_query = rng.choice(num_drawers, 2, replace=False)
    for t in rng.permutation(n_way):  # each character once as the query
      query.append(cs[t] * num_drawers + d_query)
      support.append(cs[:, None] * num_drawers + d_support)
      target.append(t)
      chars.append(cs)
  tasks = Tasks(np.array(query), np.stack(support), np.array(target), np.stack(chars))
  return tasks, run_alphabet


def make_episodes(
  num_classes: int, num_drawers: int, n_way: int, shots: int, queries: int, episodes: int, seed: int
) -> tuple[Tasks, np.ndarray]:
  """`episodes` N-way K-shot episodes of the few-shot literature, as tasks; and each task's episode [T].

  An episode: N classes drawn from all `num_classes` (regardless of alphabet), and per class K + Q
  distinct drawers, the first K its support, the other Q its queries; each query is one task over
  the episode's shared support [N, K]. Tasks are [E * N * Q], episode-major. Deterministic for a seed.
  """
  if shots + queries > num_drawers:
    raise ValueError(f"{shots}-shot episodes with {queries} queries per class need {shots + queries} drawers")
  if n_way > num_classes:
    raise ValueError(f"{n_way}-way episodes need {n_way} classes, have {num_classes}")
  rng = np.random.default_rng(seed)
  classes = np.stack([rng.choice(num_classes, n_way, replace=False) for _ in range(episodes)])  # [E, N]
  drawers = np.argsort(rng.random((episodes, n_way, num_drawers)), axis=-1)[..., : shots + queries]  # [E, N, K+Q]
  images = classes[..., None] * num_drawers + drawers
  support = np.repeat(images[:, None, :, :shots], n_way * queries, axis=1)  # [E, N*Q, N, K]
  query = images[..., shots:].reshape(episodes, n_way * queries)  # class-major within an episode
  target = np.tile(np.repeat(np.arange(n_way), queries), (episodes, 1))
  chars = np.repeat(classes[:, None, :], n_way * queries, axis=1)
  tasks = Tasks(query.reshape(-1), support.reshape(-1, n_way, shots), target.reshape(-1), chars.reshape(-1, n_way))
  return tasks, np.repeat(np.arange(episodes), n_way * queries)


def bootstrap_ci(per_cluster: np.ndarray, reps: int = 2000, seed: int = 0) -> tuple[float, float]:
  """95% percentile interval of the mean of `per_cluster` values (e.g. accuracy per run), resampling
  whole clusters: an interval that respects that queries of one run (or alphabet) are correlated."""
  x = np.asarray(per_cluster, np.float64)
  if len(x) < 2:
    return (float("nan"), float("nan"))
  means = x[np.random.default_rng(seed).integers(0, len(x), (reps, len(x)))].mean(axis=1)
  return (float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5)))


def accuracy_ci(correct: int, total: int, z: float = 1.959964) -> tuple[float, float]:
  """Wilson 95% interval for a proportion, in percent."""
  if total == 0:
    return (float("nan"), float("nan"))
  p = correct / total
  denom = 1 + z * z / total
  centre = (p + z * z / (2 * total)) / denom
  half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denom
  return (100 * (centre - half), 100 * (centre + half))


def predict(scorer: Scorer, table, remap, tasks: Tasks, chunk: int = 64) -> np.ndarray:
  """Predicted positions [T] (argmax of the class scores, first maximum on ties)."""
  preds = []
  for i in range(0, len(tasks.query), chunk):
    q = jnp.asarray(remap(tasks.query[i : i + chunk]))
    s = jnp.asarray(remap(tasks.support[i : i + chunk]))
    preds.append(np.asarray(jnp.argmax(task_scores(scorer, table, q, s), axis=-1)))
  return np.concatenate(preds) if preds else np.zeros((0,), np.int64)
