"""The very deep VAE (`model.kind='vdvae'`): block strings, the per-group KLs against the model's KL
term, importance sampling against the ELBO, remat against no remat (values, gradients, compiled
memory), bfloat16 compute, and the published CIFAR-10 model's size."""

import importlib.util
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvae import config as config_lib
from jaxvae import losses
from jaxvae.errors import UserError
from jaxvae.models import build_model, vdvae
from jaxvae.runtime.trained import init_variables

_ROOT = pathlib.Path(__file__).resolve().parents[2]
SHAPE = (8, 8, 1)


def _model(shape=SHAPE, **section):
  model = config_lib.model_config("vdvae")
  model.update(dict(width=16, latent_channels=2), **section)
  return build_model(model, shape)


def _digits(num: int) -> jax.Array:
  rng = np.random.default_rng(0)
  return jnp.asarray(rng.random((num,) + SHAPE) < 0.3, jnp.float32)


def test_block_strings_parse_and_bad_ones_name_the_fix():
  assert vdvae.parse_blocks("32x2,32d2,16", "d", "encoder_blocks") == ((32, 0), (32, 0), (32, 2),
                                                                       (16, 0))
  assert vdvae.parse_blocks("1x1,4m1", "m", "decoder_blocks") == ((1, 0), (4, 1))
  with pytest.raises(UserError, match="token '4m1'.*RxN"):
    vdvae.parse_blocks("8x2,4m1", "d", "encoder_blocks")
  with pytest.raises(UserError, match="resolution 2 has no encoder activation"):
    _model(decoder_blocks="1x1,2m1,8m2")
  with pytest.raises(UserError, match="must end at the image resolution 8"):
    _model(decoder_blocks="1x1,4m1")
  with pytest.raises(UserError, match="a block at resolution 4 follows one whose output is 8x8"):
    _model(encoder_blocks="4x1,4d4")
  with pytest.raises(UserError, match="RESOLUTION:WIDTH"):
    vdvae.parse_widths("8=32", 16)
  with pytest.raises(UserError, match="square images"):
    _model(shape=(8, 4, 1))


def test_per_group_kls_sum_to_the_kl_term_and_are_written_to_the_metrics():
  model = _model()
  variables = init_variables(model, SHAPE, jax.random.key(0))
  x, keys = _digits(4), jax.random.split(jax.random.key(1), (3, 4))
  log_weights, per_group = jax.jit(
      lambda v: model.apply(v, x, keys, method=model.layer_log_weights))(variables)
  assert per_group.shape == (model.num_groups, 3, 4) == (7, 3, 4)
  np.testing.assert_allclose(per_group.sum(0), log_weights.kl, rtol=1e-5, atol=1e-4)
  same, written = jax.jit(lambda v: model.apply(v, x, keys, mutable=["metrics"]))(variables)
  np.testing.assert_array_equal(same.values, log_weights.values)
  metrics = written["metrics"]
  assert sorted(metrics) == sorted(f"kl_layer_{g}" for g in range(7))
  means = np.mean(np.asarray(per_group, np.float64), axis=(1, 2))
  for group in range(7):  # kl_layer_0 is the bottom group: the last top-down block.
    np.testing.assert_allclose(metrics[f"kl_layer_{6 - group}"], means[group], rtol=1e-5,
                               atol=1e-5)
  np.testing.assert_allclose(sum(metrics.values()), np.mean(np.asarray(log_weights.kl, np.float64)),
                             rtol=1e-5, atol=1e-4)


def test_top_group_terms_are_gaussian_densities_in_float64():
  """The top group's log q and log p at its draws, recomputed in NumPy from the draws and the
  outputs of the block's prior and posterior heads (log std in the second half of 2 Z)."""
  model = _model()
  variables = init_variables(model, SHAPE, jax.random.key(0))
  variables = jax.tree.map(lambda a: a + 0.05 * jax.random.normal(jax.random.key(5), a.shape),
                           variables)  # the prior's head starts at zero: make it not N(0, I)
  x, keys = _digits(3), jax.random.split(jax.random.key(2), (1, 3))
  (_, per_group), captured = jax.jit(lambda v: model.apply(
      v, x, keys, method=model.layer_log_weights, capture_intermediates=True,
      mutable=["intermediates"]))(variables)
  top = captured["intermediates"]["decoder_0"]
  _, z, log_q, log_p = top["__call__"][0]
  as_flat = lambda a: np.asarray(a, np.float64).reshape(3, -1)  # noqa: E731
  prior, posterior = as_flat(top["prior"]["__call__"][0]), as_flat(top["posterior"]["__call__"][0])
  z = np.asarray(z, np.float64)

  def log_normal(z, mean, log_std):
    return np.sum(-0.5 * np.log(2 * np.pi) - log_std - 0.5 * ((z - mean) / np.exp(log_std))**2, -1)

  np.testing.assert_allclose(log_q, log_normal(z, posterior[:, :2], posterior[:, 2:4]), rtol=1e-5)
  np.testing.assert_allclose(log_p, log_normal(z, prior[:, :2], prior[:, 2:4]), rtol=1e-5)
  np.testing.assert_allclose(per_group[0, 0], log_q - log_p, rtol=1e-5, atol=1e-5)
  assert not np.allclose(prior[:, :4], 0)


def test_importance_sampling_is_above_the_elbo_and_tightens_with_k():
  model = _model()
  variables = init_variables(model, SHAPE, jax.random.key(0))
  variables = jax.tree.map(lambda a: a + 0.3 * jax.random.normal(jax.random.key(5), a.shape),
                           variables)  # q far from p(z | x): a wide gap to close
  x = _digits(32)
  keys = jax.random.split(jax.random.key(3), (1000, 32))
  values = np.asarray(jax.jit(lambda k: model.apply(variables, x, k).values)(keys), np.float64)
  elbo = values.mean()
  bounds = [np.mean(np.asarray(losses.iwae_bound(jnp.asarray(values[:k])), np.float64))
            for k in (1, 10, 100, 1000)]
  np.testing.assert_allclose(bounds[0], values[0].mean(), rtol=1e-6)
  assert elbo < bounds[1] < bounds[2] < bounds[3], (elbo, bounds)
  # The K = 1000 estimate in float64 by NumPy: log mean exp over the samples.
  peak = values.max(0)
  exact = np.mean(peak + np.log(np.mean(np.exp(values - peak), 0)))
  np.testing.assert_allclose(bounds[3], exact, rtol=1e-5)


def _loss(model, x, keys):
  return lambda params: -jnp.mean(model.apply({"params": params}, x, keys).values)


def test_remat_gives_the_same_loss_and_gradients_and_keeps_fewer_activations():
  """Activation memory is measured as the bytes of the residuals the forward pass keeps for the
  backward one (`jax.vjp`'s closure, traced abstractly): XLA:CPU's compiled memory analysis does not
  show rematerialization (its temp bytes are the same with and without `jax.checkpoint` even on a
  plain MLP), the GPU device check measures the compiled memory."""
  shape = (16, 16, 3)
  section = dict(encoder_blocks="16x2,16d2,8x2,8d8,1x1", decoder_blocks="1x1,8m1,8x2,16m8,16x2",
                 likelihood="discretized_logistic", num_mixtures=2)
  plain, remat = _model(shape, **section), _model(shape, remat=True, **section)
  params = init_variables(plain, shape, jax.random.key(0))["params"]
  x = jnp.round(jax.random.uniform(jax.random.key(1), (4,) + shape) * 255) / 255
  keys = jax.random.split(jax.random.key(2), (1, 4))
  (loss_a, grads_a), (loss_b, grads_b) = (jax.jit(jax.value_and_grad(_loss(m, x, keys)))(params)
                                          for m in (plain, remat))
  np.testing.assert_allclose(loss_a, loss_b, rtol=1e-6)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4 * np.abs(
      a).max()), grads_a, grads_b)
  kept = {}
  for name, model in (("plain", plain), ("remat", remat)):
    residuals = jax.eval_shape(lambda p, m=model: jax.vjp(_loss(m, x, keys), p)[1], params)
    kept[name] = sum(a.size * a.dtype.itemsize for a in jax.tree.leaves(residuals))
  assert kept["remat"] < 0.5 * kept["plain"], kept


def test_bfloat16_compute_keeps_float32_densities_near_float32():
  model = _model()
  variables = init_variables(model, SHAPE, jax.random.key(0))
  x, keys = _digits(8), jax.random.split(jax.random.key(4), (2, 8))
  apply = jax.jit(lambda v, x: model.apply(v, x, keys))
  full = apply(variables, x)
  low = apply(jax.tree.map(lambda a: a.astype(jnp.bfloat16), variables), x.astype(jnp.bfloat16))
  assert all(a.dtype == jnp.float32 for a in low)
  np.testing.assert_allclose(low.values, full.values, rtol=0.05)


def test_sampling_temperature_zero_is_deterministic_and_per_group_temperatures_apply():
  model = _model()
  variables = init_variables(model, SHAPE, jax.random.key(0))
  variables = jax.tree.map(lambda a: a + 0.05 * jax.random.normal(jax.random.key(5), a.shape),
                           variables)
  sample = lambda key, t: model.apply(variables, key, 4, None, t, method=model.sample)  # noqa: E731
  np.testing.assert_array_equal(sample(jax.random.key(0), 0.0), sample(jax.random.key(1), 0.0))
  per_group = (1.0,) + (0.0,) * (model.num_groups - 1)
  assert not np.allclose(sample(jax.random.key(0), per_group), sample(jax.random.key(1), per_group))
  np.testing.assert_allclose(sample(jax.random.key(0), (0.0,) * model.num_groups),
                             sample(jax.random.key(0), 0.0))


def _load_config(name: str, variant: str = ""):
  spec = importlib.util.spec_from_file_location(name, _ROOT / "configs" / f"{name}.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(variant)


def test_cifar10_config_has_the_published_39m_parameters():
  config = _load_config("cifar10_vdvae")
  model = build_model(config.model, (32, 32, 3))
  shapes = jax.eval_shape(lambda key: init_variables(model, (32, 32, 3), key), jax.random.key(0))
  count = sum(a.size for a in jax.tree.leaves(shapes))
  assert abs(count / 39e6 - 1) < 0.02, count
  assert model.num_groups == 43 and len(model.encoder_blocks) == 33
  assert config.train.clip_grad_norm == 200 * 3072 and config.train.skip_grad_norm == 400 * 3072
