"""The evaluator's estimator (`losses.chunked_iwae_bound` at large K) against exact answers."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvae.losses import chunked_iwae_bound


def _gaussian_model(posterior_scale: float):
  """p(z) = N(0, 1), p(x | z) = N(z, 1), so p(x) = N(0, 2) and p(z | x) = N(x / 2, 1 / 2).

  q(z | x) = N(x / 2, posterior_scale^2); posterior_scale = sqrt(1/2) makes q exact.
  """
  def log_normal(v, mean, var):
    return -0.5 * (jnp.log(2 * jnp.pi * var) + (v - mean) ** 2 / var)

  def log_weights_fn(x, keys):  # x [B], keys [C, B] -> [C, B]
    eps = jax.vmap(jax.vmap(lambda k: jax.random.normal(k)))(keys)
    z = x / 2 + posterior_scale * eps
    return (log_normal(z, 0.0, 1.0) + log_normal(x, z, 1.0)
            - log_normal(z, x / 2, posterior_scale**2))
  return log_weights_fn


def _exact_log_px(x):
  return -0.5 * (np.log(2 * np.pi * 2.0) + np.asarray(x, np.float64) ** 2 / 2.0)


def _keys(ids):
  return jax.vmap(jax.random.fold_in, (None, 0))(jax.random.key(0), jnp.asarray(ids))


def test_exact_posterior_gives_exact_log_px_for_every_k():
  x = jnp.array([-2.0, 0.0, 0.5, 3.0])
  fn = _gaussian_model(math.sqrt(0.5))
  for k in (1, 7, 100):
    log_px, elbo = chunked_iwae_bound(lambda keys: fn(x, keys), _keys(range(4)), k, chunk_size=3)
    np.testing.assert_allclose(log_px, _exact_log_px(x), atol=1e-5)
    np.testing.assert_allclose(elbo, _exact_log_px(x), atol=1e-5)


def test_matches_numpy_logsumexp_over_all_samples_at_once():
  x = jnp.array([-1.0, 0.3, 2.0])
  fn = _gaussian_model(1.3)
  k = 50
  keys = jax.vmap(lambda s: jax.vmap(lambda ek: jax.random.fold_in(ek, s))(_keys(range(3))))(
      jnp.arange(k))
  log_w = np.asarray(fn(x, keys), np.float64)  # [K, B], every sample at once
  expected = np.logaddexp.reduce(log_w, axis=0) - np.log(k)
  log_px, elbo = chunked_iwae_bound(lambda keys: fn(x, keys), _keys(range(3)), k, chunk_size=8)
  np.testing.assert_allclose(log_px, expected, atol=1e-5)
  np.testing.assert_allclose(elbo, log_w.mean(0), atol=1e-5)
  assert np.all(np.asarray(elbo) <= np.asarray(log_px) + 1e-6)


@pytest.mark.parametrize("chunk_size", [3, 64])
def test_independent_of_chunk_size_and_batch_composition(chunk_size):
  x = jnp.array([-1.0, 0.3, 2.0, 0.7])
  fn = _gaussian_model(0.9)
  whole, _ = chunked_iwae_bound(lambda keys: fn(x, keys), _keys(range(4)), 10, 10)
  chunked, _ = chunked_iwae_bound(lambda keys: fn(x, keys), _keys(range(4)), 10, chunk_size)
  tail, _ = chunked_iwae_bound(lambda keys: fn(x[2:], keys), _keys(range(2, 4)), 10, chunk_size)
  np.testing.assert_allclose(chunked, whole, atol=1e-6)
  np.testing.assert_allclose(tail, whole[2:], atol=1e-6)


def test_approaches_log_px_as_k_grows():
  x = jnp.linspace(-2, 2, 16)
  fn = _gaussian_model(1.5)  # a poor q: the ELBO is well below log p(x)
  exact = _exact_log_px(x).mean()
  log_px = [chunked_iwae_bound(lambda keys: fn(x, keys), _keys(range(16)), k, 100)[0]
            for k in (1, 100, 5000)]
  gaps = [exact - float(jnp.mean(v)) for v in log_px]
  assert gaps[0] > gaps[1] > gaps[2] > -0.01 and gaps[2] < 0.02


def test_several_k_in_one_pass_are_nested_prefixes_and_differentiable():
  x = jnp.array([-1.0, 0.3, 2.0])
  fn = _gaussian_model(1.3)
  ks = (1, 4, 9, 25)
  keys = jax.vmap(lambda s: jax.vmap(lambda ek: jax.random.fold_in(ek, s))(_keys(range(3))))(
      jnp.arange(25))
  log_w = np.asarray(fn(x, keys), np.float64)  # [25, B]: all draws at once
  bound = jax.jit(lambda v: chunked_iwae_bound(lambda k: fn(v, k), _keys(range(3)), ks, 4))
  log_px, elbo = bound(x)
  assert log_px.shape == elbo.shape == (4, 3)
  for j, k in enumerate(ks):
    np.testing.assert_allclose(log_px[j], np.logaddexp.reduce(log_w[:k], 0) - np.log(k), atol=1e-5)
    np.testing.assert_allclose(elbo[j], log_w[:k].mean(0), atol=1e-5)
  grads = jax.grad(lambda v: jnp.sum(chunked_iwae_bound(lambda k: fn(v, k), _keys(range(3)),
                                                        ks, 4)[0]))(x)
  assert np.all(np.isfinite(np.asarray(grads)))
  with pytest.raises(ValueError, match="strictly increasing"):
    chunked_iwae_bound(lambda k: fn(x, k), _keys(range(3)), (10, 5), 4)
