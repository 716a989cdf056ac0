"""Clamped BCE: finite at extreme logits, textbook value on ordinary ones."""

import jax.numpy as jnp
import numpy as np

from siamese_jax import losses


def test_finite_at_extreme_logits():
  logits = jnp.array([100.0, -100.0, 100.0, -100.0])
  labels = jnp.array([0.0, 1.0, 1.0, 0.0])
  out = losses.clamped_bce(logits, labels)
  assert bool(jnp.all(jnp.isfinite(out)))
  eps = np.finfo(np.float32).eps
  np.testing.assert_allclose(out[:2], -np.log(eps), rtol=1e-3)
  assert float(out[2]) < 1e-6 and float(out[3]) < 1e-6
  assert bool(jnp.isfinite(losses.mean_clamped_bce(logits, labels)))


def test_matches_textbook_formula():
  rng = np.random.default_rng(0)
  z = rng.normal(size=64).astype(np.float32) * 3
  y = rng.integers(0, 2, 64).astype(np.float32)
  p = 1 / (1 + np.exp(-z.astype(np.float64)))
  want = -(y * np.log(p) + (1 - y) * np.log(1 - p))
  np.testing.assert_allclose(losses.clamped_bce(jnp.array(z), jnp.array(y)), want, rtol=1e-5)
  np.testing.assert_allclose(losses.mean_clamped_bce(jnp.array(z), jnp.array(y)), want.mean(), rtol=1e-5)


def test_hard_negatives_weigh_alike_different_pairs_and_skip_copies_of_one_character():
  import jax

  from siamese_jax import input_pipeline, model

  rng = np.random.default_rng(0)
  e = 8
  params = {"head": {"w": jnp.asarray(rng.normal(size=(e, 1)), jnp.float32), "b": jnp.zeros((1,), jnp.float32)}}
  emb = jnp.asarray(rng.normal(size=(6, e)), jnp.float32)
  chars = jnp.array([0, 0, 1, 1, 2, 2])
  batch = input_pipeline.GroupBatch(emb, chars, jnp.array([7, 7, 9, 9, 7, 7]))  # classes 0 and 2: one character
  encode = lambda p, x: x
  z = np.asarray(model.all_pair_logits(params, emb), np.float64)
  bce = np.asarray(
    losses.clamped_bce(jnp.asarray(z, jnp.float32), jnp.asarray(np.equal.outer(chars, chars), jnp.float32))
  )
  i, j = np.triu_indices(6, 1)
  same, base_same = (
    np.asarray(chars)[i] == np.asarray(chars)[j],
    np.asarray(batch.bases)[i] == np.asarray(batch.bases)[j],
  )
  pos = bce[i, j][same].mean()
  plain = losses.all_pairs_objective(params, batch, encode)
  np.testing.assert_allclose(plain, 0.5 * (pos + bce[i, j][~same].mean()), rtol=1e-5)  # every different pair
  neg = ~same & ~base_same
  w = np.exp(0.5 * z[i, j][neg])
  want = 0.5 * (pos + np.sum(w / w.sum() * bce[i, j][neg]))
  np.testing.assert_allclose(losses.all_pairs_objective(params, batch, encode, hard_negatives=0.5), want, rtol=1e-5)
  # the weights are held constant: the gradient is that of the BCE weighted by them
  g = jax.grad(lambda x: losses.all_pairs_objective(params, batch._replace(x=x), encode, 0.5))(emb)
  labels = jnp.asarray(np.equal.outer(chars, chars), jnp.float32)

  def fixed_weights(x):
    b = losses.clamped_bce(model.all_pair_logits(params, x), labels)[i, j]
    return 0.5 * (jnp.mean(b[same]) + jnp.sum(jnp.asarray(w / w.sum(), jnp.float32) * b[neg]))

  np.testing.assert_allclose(g, jax.grad(fixed_weights)(emb), rtol=1e-4, atol=1e-6)


def _group(rng, classes=3, per=4, e=5):
  from siamese_jax import input_pipeline

  emb = jnp.asarray(rng.normal(size=(classes * per, e)), jnp.float32)
  return input_pipeline.GroupBatch(emb, jnp.repeat(jnp.arange(classes), per))


def _reference(name, x, chars, margin=1.0, per=4):
  """NumPy reference of each metric objective over embeddings x [N, E] (float64)."""
  d2 = ((x[:, None] - x[None]) ** 2).sum(-1)
  same = chars[:, None] == chars[None]
  n = len(x)
  if name == "contrastive":
    i, j = np.triu_indices(n, 1)
    pos = same[i, j]
    d = np.sqrt(d2[i, j])
    return 0.5 * (d2[i, j][pos].mean() + (np.maximum(margin - d[~pos], 0) ** 2).mean())
  if name == "triplet":
    vals = [
      max(d2[a, p] - d2[a, q] + margin, 0)
      for a in range(n)
      for p in range(n)
      for q in range(n)
      if p != a and same[a, p] and not same[a, q]
    ]
    return np.mean(vals)
  k = per // 2
  blocks = x.reshape(-1, per, x.shape[-1])
  protos = blocks[:, :k].mean(1)
  loss = []
  for c, block in enumerate(blocks):
    for q in block[k:]:
      logits = -((q - protos) ** 2).sum(-1)
      loss.append(-(logits[c] - np.log(np.exp(logits - logits.max()).sum()) - logits.max()))
  return np.mean(loss)


def test_metric_objectives_match_their_definitions_and_symmetries():
  rng = np.random.default_rng(1)
  batch = _group(rng)
  encode = lambda p, x: x  # noqa: E731
  x, chars = np.asarray(batch.x, np.float64), np.asarray(batch.chars)
  perm = rng.permutation(len(chars))
  class_perm = np.concatenate([np.arange(4) + 4 * c for c in (2, 0, 1)])  # whole classes reordered
  for name in ("contrastive", "triplet", "prototypical"):
    entry = losses.OBJECTIVES[name]
    opts = {"margin": 1.5} if "margin" in entry.options else {"drawers_per_char": 4}
    got = float(entry.fn(None, batch, encode, **opts))
    np.testing.assert_allclose(got, _reference(name, x, chars, opts.get("margin", 1.0)), rtol=1e-4)
    # contrastive and triplet: any order of the images; prototypical: any order of the classes
    order = class_perm if name == "prototypical" else perm
    shuffled = batch._replace(x=batch.x[order], chars=batch.chars[order])
    np.testing.assert_allclose(float(entry.fn(None, shuffled, encode, **opts)), got, rtol=1e-5)


def test_every_objective_decreases_on_a_tiny_overfit():
  """Each objective (with a head it trains with) on one fixed batch of 4 classes x 4 images: Adam
  steps on a small network lower it to under 70% of its start."""
  from conftest import character_image
  import jax
  import ml_collections
  import optax

  from siamese_jax import images, input_pipeline, model

  cfg = ml_collections.ConfigDict(
    dict(image_size=28, channels=1, features=(8, 16), kernel_sizes=(3, 3), embed_dim=16, norm_groups=0, init="he")
  )
  x = images.prepare_images([character_image(c, d) for c in range(4) for d in range(4)], 28)
  group = input_pipeline.GroupBatch(jnp.asarray(x), jnp.repeat(jnp.arange(4), 4))
  settings = {"hard_negatives": 0.0, "margin": 1.0, "drawers_per_char": 4}
  runs = [("all_pairs", "l1"), ("all_pairs", "cosine"), ("contrastive", "euclidean"), ("triplet", "euclidean")]
  for name, head in [*runs, ("prototypical", "euclidean")]:
    cfg.head = head
    spec, entry = model.spec(cfg), losses.OBJECTIVES[name]
    options = {k: head if k == "head" else settings[k] for k in entry.options}

    def loss(p, entry=entry, spec=spec, options=options):
      return entry.fn(p, group, lambda q, v: model.encode(q, v, spec), **options)

    opt = optax.adam(3e-3)

    @jax.jit
    def step(p, s, loss=loss, opt=opt):
      updates, s = opt.update(jax.grad(loss)(p), s, p)
      return optax.apply_updates(p, updates), s

    params = model.init(jax.random.PRNGKey(0), cfg)
    state, first = opt.init(params), float(loss(params))
    for _ in range(40):
      params, state = step(params, state)
    assert float(loss(params)) < 0.7 * first, (name, head, first, float(loss(params)))
