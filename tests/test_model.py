"""Model: parameter count, shapes, symmetry, initialisation, config errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import koch
from siamese_jax import host, model


def test_koch_parameter_count():
  cfg = koch.get_config().model
  params = jax.eval_shape(lambda k: model.init(k, cfg), jax.random.PRNGKey(0))
  assert model.num_params(params) == 38_951_745


def test_encode_shapes_and_range():
  cfg = koch.get_config("smoke").model
  params = model.init(jax.random.PRNGKey(0), cfg)
  x = jax.random.randint(jax.random.PRNGKey(1), (5, 32, 32, 1), 0, 256).astype(jnp.uint8)
  e = model.encode(params, x, model.spec(cfg))
  assert e.shape == (5, cfg.embed_dim) and e.dtype == jnp.float32
  assert bool(jnp.all((e > 0) & (e < 1)))


def test_score_is_symmetric():
  cfg = koch.get_config("smoke").model
  params = model.init(jax.random.PRNGKey(0), cfg)
  a = jax.random.uniform(jax.random.PRNGKey(1), (8, 32, 32, 1))
  b = jax.random.uniform(jax.random.PRNGKey(2), (8, 32, 32, 1))
  spec = model.spec(cfg)
  np.testing.assert_array_equal(model.score(params, spec, a, b), model.score(params, spec, b, a))
  s = model.score(params, spec, a, b)
  assert s.shape == (8,) and bool(jnp.all((s >= 0) & (s <= 1)))


@pytest.mark.parametrize("init,bias_mean,dense_std", [("koch", 0.5, 0.2), ("narrow_normal", 0.0, 0.01)])
def test_initialisations(init, bias_mean, dense_std):
  cfg = koch.get_config().model
  cfg.init = init
  cfg.embed_dim = 512  # Smaller dense layer, same statistics.
  params = model.init(jax.random.PRNGKey(0), cfg)
  assert abs(float(params["conv1"]["w"].std()) - 0.01) < 1e-3
  assert abs(float(params["conv1"]["b"].mean()) - bias_mean) < 5e-3
  assert abs(float(params["embed"]["w"].std()) - dense_std) < 0.05 * dense_std


def test_image_too_small_for_kernels():
  cfg = koch.get_config().model
  cfg.image_size = 40
  with pytest.raises(ValueError, match="too small"):
    model.init(jax.random.PRNGKey(0), cfg)


def test_cpu_preset_gradients_under_jit_match_op_by_op():
  # Guards the shipped width against XLA:CPU: under jit, jax 0.10.2 computed wrong (or
  # non-finite) gradients at 80 or 96 channels (docs/results.md, "Known XLA:CPU issues").
  from siamese_jax.tools import width_gradients

  errors = width_gradients.layer_errors(koch.get_config("cpu").model)
  assert set(errors) == {"conv0", "conv1", "conv2", "embed"}
  assert all(e < width_gradients.TOLERANCE for e in errors.values()), errors


def test_group_norm_statistics_and_scale_invariance():
  x = jax.random.normal(jax.random.PRNGKey(0), (3, 5, 6, 8)) * 4.0 + 2.0
  y = np.asarray(model.group_norm(x, jnp.ones((4, 2)), jnp.zeros(8))).reshape(3, 5, 6, 4, 2)
  np.testing.assert_allclose(y.mean(axis=(1, 2, 4)), 0.0, atol=1e-5)
  np.testing.assert_allclose(y.std(axis=(1, 2, 4)), 1.0, atol=1e-3)

  def plain(x, gain, bias):  # the textbook form, differentiated by JAX
    xg = x.reshape(3, 5, 6, 4, 2)
    mean = xg.mean(axis=(1, 2, 4), keepdims=True)
    var = jnp.square(xg - mean).mean(axis=(1, 2, 4), keepdims=True)
    return ((xg - mean) / jnp.sqrt(var + 1e-5)).reshape(x.shape) * gain.reshape(-1) + bias

  gain = jax.random.uniform(jax.random.PRNGKey(3), (4, 2)) + 0.5
  bias = jax.random.normal(jax.random.PRNGKey(4), (8,))
  loss = lambda f: lambda *a: jnp.sum(jnp.sin(f(*a)))
  np.testing.assert_allclose(model.group_norm(x, gain, bias), plain(x, gain, bias), rtol=1e-4, atol=1e-5)
  for got, want in zip(
    jax.grad(loss(model.group_norm), (0, 1, 2))(x, gain, bias), jax.grad(loss(plain), (0, 1, 2))(x, gain, bias)
  ):
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
  cfg = koch.get_config("smoke").model
  cfg.norm_groups, cfg.init = 4, "he"
  params = model.init(jax.random.PRNGKey(1), cfg)
  assert all(params[f"conv{i}"]["g"].shape == (4, f // 4) for i, f in enumerate(cfg.features))
  images = jax.random.uniform(jax.random.PRNGKey(2), (2, 32, 32, 1))
  e = model.encode(params, images, model.spec(cfg))
  # A group norm undoes a positive rescaling of the conv weights (the bias comes after it).
  scaled = dict(params)
  for i in range(len(cfg.features)):
    scaled[f"conv{i}"] = dict(params[f"conv{i}"], w=params[f"conv{i}"]["w"] * 7.0)
  np.testing.assert_allclose(model.encode(scaled, images, model.spec(cfg)), e, rtol=1e-4, atol=1e-5)
  cfg.norm_groups = 0
  assert "g" not in model.init(jax.random.PRNGKey(1), cfg)["conv0"]
  assert not np.allclose(model.encode(model.init(jax.random.PRNGKey(1), cfg), images, model.spec(cfg)), e)


@pytest.mark.parametrize("by_dimension", [False, True])
def test_all_pair_logits_match_pair_logits_and_autodiff(by_dimension):
  """The custom-gradient all-pairs head, in both formulations: values and gradients equal the broadcast form."""
  k1, k2, k3 = jax.random.split(jax.random.PRNGKey(0), 3)
  params = {"head": {"w": jax.random.normal(k1, (16, 1)), "b": jnp.array([0.3])}}
  emb = jax.random.uniform(k2, (9, 16))
  g = jax.random.normal(k3, (9, 9))
  ref = lambda p, e: model.pair_logits(p, e[:, None, :], e[None, :, :])
  head = lambda p, e: model.all_pair_logits(p, e, by_dimension)
  got = head(params, emb)
  np.testing.assert_allclose(got, ref(params, emb), rtol=1e-6, atol=1e-6)
  np.testing.assert_allclose(got, got.T, rtol=0, atol=1e-6)
  loss = lambda f: lambda p, e: jnp.sum(g * f(p, e))
  grads = [jax.grad(loss(f), argnums=(0, 1))(params, emb) for f in (head, ref)]
  for a, b in zip(*map(jax.tree_util.tree_leaves, grads)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_bfloat16_turned_off_on_xla_cpu_with_a_reason(tmp_path):
  dtype, why = model.compute_dtype("bfloat16", "cpu", native_bf16=False)
  assert dtype == jnp.float32 and "no native bfloat16" in why and "\n" not in why
  dtype, why = model.compute_dtype("bfloat16", "cpu", native_bf16=True)
  assert dtype == jnp.float32 and "convolutions do not use it" in why and "\n" not in why
  assert model.compute_dtype("bfloat16", "gpu") == (jnp.bfloat16, None)
  assert model.compute_dtype("float32", "cpu", native_bf16=False) == (jnp.float32, None)
  cpuinfo = "processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: fpu avx2 avx512f avx512_bf16\n"
  (tmp_path / "cpuinfo").write_text(cpuinfo)
  info = host.cpu_info(str(tmp_path / "cpuinfo"))
  assert info["model"] == "Some CPU" and info["extensions"] == ["avx2", "avx512f", "avx512_bf16"]
  assert host.native_bfloat16(info) and not host.native_bfloat16({"extensions": ["avx2"]})


def test_every_head_is_symmetric_and_its_all_pairs_form_agrees():
  import ml_collections

  from siamese_jax import model

  rng = np.random.default_rng(0)
  emb = jnp.asarray(rng.uniform(size=(6, 8)), jnp.float32)
  for head in model.HEADS:
    cfg = ml_collections.ConfigDict(
      dict(
        image_size=28, channels=1, features=(4,), kernel_sizes=(3,), embed_dim=8, norm_groups=0, init="he", head=head
      )
    )
    params = model.init(jax.random.PRNGKey(1), cfg)
    ab = model.pair_logits(params, emb[:, None], emb[None], head)
    np.testing.assert_allclose(ab, np.asarray(ab).T, rtol=1e-6, atol=1e-6)
    for by_dimension in (True, False):
      np.testing.assert_allclose(model.all_pair_logits(params, emb, by_dimension, head), ab, rtol=1e-5, atol=1e-5)
    assert params["head"]["w"].shape == ((8, 1) if head == "l1" else (1, 1))


def test_the_api_and_the_fitted_threshold_work_with_each_head():
  """One-shot picks the identical image and verification fits a threshold, whatever the head."""
  from conftest import character_image

  from configs import koch
  from siamese_jax import api, evaluate, model, oneshot
  from siamese_jax.omniglot.loader import CharacterArray

  glyphs = [character_image(c, d) for c in range(4) for d in range(3)]
  for head in model.HEADS:
    cfg = koch.get_config("smoke")
    cfg.model.head, cfg.model.init = head, "he"  # the smoke preset's narrow init embeds every image alike
    params = model.init(jax.random.PRNGKey(0), cfg.model)
    if head == "l1":  # a trained L1 head weighs distances negatively: closer pairs score higher
      params["head"]["w"] = -jnp.abs(params["head"]["w"])
    net = api.Siamese(cfg, params, tta=False)
    out = net.one_shot(glyphs[4], [glyphs[0], glyphs[4], glyphs[8]])
    assert out["prediction"] == 1
    np.testing.assert_allclose(
      net.similarity(glyphs[:3], glyphs[3:6]), net.similarity(glyphs[3:6], glyphs[:3]), rtol=1e-5
    )
    images = net.prepare(glyphs).reshape(4, 3, 32, 32, 1)
    chars = CharacterArray(images, np.arange(4), np.zeros(4, int), np.arange(1, 4))
    fitted = evaluate.fit_verification_threshold(oneshot.config_scorer(net.params, cfg.model), chars, 50, 0, 64)
    assert 0.0 <= fitted["threshold"] <= 1.0
