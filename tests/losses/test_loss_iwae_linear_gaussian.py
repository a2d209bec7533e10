"""The IWAE bound on a linear-Gaussian model where log p(x) is exact.

p(z) = N(0, I_d), p(x | z) = N(W z + b, s^2 I_D), so p(x) = N(b, W W^T + s^2 I) and the posterior is
N(mu, S) with S = (I + W^T W / s^2)^{-1}, mu = S W^T (x - b) / s^2 (NumPy float64 oracles).
"""

import math
import re

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvae import distributions as dist
from jaxvae import losses

D_LATENT, D_OBS, BATCH, NOISE = 2, 4, 6, 0.7
_rng = np.random.default_rng(0)
W = _rng.normal(size=(D_OBS, D_LATENT))
B = _rng.normal(size=D_OBS)
X = (_rng.normal(size=(BATCH, D_LATENT)) @ W.T + B + NOISE * _rng.normal(size=(BATCH, D_OBS)))


def _np_log_px(x):
  cov = W @ W.T + NOISE**2 * np.eye(D_OBS)
  diff = x - B
  maha = np.einsum("bi,ij,bj->b", diff, np.linalg.inv(cov), diff)
  return -0.5 * (D_OBS * math.log(2 * math.pi) + np.linalg.slogdet(cov)[1] + maha)


def _np_posterior(x):
  cov = np.linalg.inv(np.eye(D_LATENT) + W.T @ W / NOISE**2)
  return (x - B) @ W @ cov.T / NOISE**2, cov  # [B, d], [d, d]


LOG_PX = _np_log_px(X)
POST_MEAN, POST_COV = _np_posterior(X)
EXAMPLE_KEYS = jax.random.split(jax.random.key(42), BATCH)


def _log_weights_fn(q_mean, q_tril):
  """`keys [C, B] -> [C, B]` log weights with q(z | x_b) = N(q_mean[b], q_tril q_tril^T)."""
  x, w, b = (jnp.asarray(a, jnp.float32) for a in (X, W, B))

  def one(key, x_b, mean_b):
    z = dist.full_gaussian_sample(key, mean_b, q_tril)
    return (dist.gaussian_log_prob(x_b, w @ z + b, NOISE) + dist.standard_normal_log_prob(z)
            - dist.full_gaussian_log_prob(z, mean_b, q_tril))

  return lambda keys: jax.vmap(jax.vmap(one, in_axes=(0, 0, 0)), in_axes=(0, None, None))(
      keys, x, jnp.asarray(q_mean, jnp.float32))


EXACT = _log_weights_fn(POST_MEAN, np.linalg.cholesky(POST_COV))
# A deliberately poor q: the mean shifted by 1.2 posterior standard deviations along each whitened
# axis and a 2x wider covariance (wider than the posterior, so the weights' variance is finite:
# chi^2(p || q) = prod_d c / sqrt(2c - 1) exp(delta_d^2 / (2c - 1)) - 1 = 2.48 with c = 2).
_POST_CHOL = np.linalg.cholesky(POST_COV)
APPROX = _log_weights_fn(POST_MEAN + _POST_CHOL @ np.array([1.2, 1.2]), math.sqrt(2) * _POST_CHOL)


def test_exact_posterior_gives_log_px_for_every_k():
  log_w = jax.jit(EXACT)(losses.sample_keys(EXAMPLE_KEYS, jnp.arange(100)))  # [100, B]
  np.testing.assert_allclose(log_w, np.broadcast_to(LOG_PX, (100, BATCH)), rtol=1e-5, atol=1e-4)
  for k in (1, 7, 100):  # the first k samples
    np.testing.assert_allclose(losses.iwae_bound(log_w[:k]), LOG_PX, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(losses.elbo(log_w[:k]), LOG_PX, rtol=1e-5, atol=1e-4)
  iwae, elbo = jax.jit(lambda k: losses.chunked_iwae_bound(EXACT, k, 1000, 300))(EXAMPLE_KEYS)
  np.testing.assert_allclose(iwae, LOG_PX, rtol=1e-5, atol=1e-4)
  np.testing.assert_allclose(elbo, LOG_PX, rtol=1e-5, atol=1e-4)


def test_iwae_is_below_log_px_and_grows_with_k():
  replicates = 200

  def log_weights(rep_key):  # [1000, B]; the bound with K samples uses the first K
    return APPROX(losses.sample_keys(jax.random.split(rep_key, BATCH), jnp.arange(1000)))

  log_w = jax.jit(jax.vmap(log_weights))(jax.random.split(jax.random.key(7), replicates))
  gaps = {k: np.float64(jax.vmap(losses.iwae_bound)(log_w[:, :k])) - LOG_PX  # [R, B]
          for k in (1, 10, 100, 1000)}
  means = {k: g.mean() for k, g in gaps.items()}
  ses = {k: g.std() / math.sqrt(g.size) for k, g in gaps.items()}
  for k in gaps:  # below log p(x) on average over replicates and examples
    assert means[k] < 3 * ses[k], (k, means[k], ses[k])
  assert means[1] < -0.1  # the poor q has a real gap at K = 1
  # The gap shrinks like chi^2 / (2K): clearly measurable from 1 to 10 to 100 ...
  for k_small, k_large in ((1, 10), (10, 100)):
    diff_se = math.hypot(ses[k_small], ses[k_large])
    assert means[k_large] > means[k_small] + 2 * diff_se, (k_small, k_large, means)
  # ... and from 100 to 1000 (chi^2 / (2K): a 0.011-nat step) no decrease beyond the noise.
  assert means[1000] > means[100] - 2 * math.hypot(ses[100], ses[1000]), means
  # Each example's expected bound is below its log p(x) (within 3 standard errors).
  for k, g in gaps.items():
    assert np.all(g.mean(0) < 3 * g.std(0) / math.sqrt(replicates) + 1e-6), (k, g.mean(0))


def test_chunked_iwae_at_k_5000_is_within_005_nats_of_log_px():
  iwae, elbo = jax.jit(lambda k: losses.chunked_iwae_bound(APPROX, k, 5000, 512))(EXAMPLE_KEYS)
  assert np.all(np.abs(np.float64(iwae) - LOG_PX) < 0.05), np.float64(iwae) - LOG_PX
  assert np.all(np.float64(elbo) < np.float64(iwae))


def test_chunking_does_not_change_the_result():
  k = 1000
  log_w = jax.jit(APPROX)(losses.sample_keys(EXAMPLE_KEYS, jnp.arange(k)))
  full, full_elbo = losses.iwae_bound(log_w), losses.elbo(log_w)
  # Three full chunks of 256 and a remainder of 232.
  iwae, elbo = jax.jit(lambda keys: losses.chunked_iwae_bound(APPROX, keys, k, 256))(EXAMPLE_KEYS)
  np.testing.assert_allclose(iwae, full, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(elbo, full_elbo, rtol=1e-5, atol=1e-5)
  # Per-example keys: the bound of example 3 does not depend on the rest of the batch.
  alone, _ = jax.jit(lambda keys: losses.chunked_iwae_bound(
      lambda ks: APPROX(jnp.tile(ks, (1, BATCH)))[:, 3:4], keys, k, 256))(EXAMPLE_KEYS[3:4])
  np.testing.assert_allclose(alone, full[3:4], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("chunk_size, message", [
    (0, "chunk_size must be a positive integer, got 0"),
    (-4, "chunk_size must be a positive integer, got -4"),
    (2.5, "chunk_size must be an integer, got 2.5"),
])
def test_bad_chunk_sizes_are_clear_value_errors(chunk_size, message):
  with pytest.raises(ValueError, match=re.escape(message)):
    losses.chunked_iwae_bound(APPROX, EXAMPLE_KEYS, 10, chunk_size)


@pytest.mark.parametrize("num_samples, message", [
    (2.0, "num_samples must be an integer, got 2.0"),
    ((1, 2.5), "num_samples must be an integer, got 2.5"),
    ((5, 3), "num_samples must be positive and strictly increasing"),
])
def test_bad_num_samples_are_clear_value_errors(num_samples, message):
  with pytest.raises(ValueError, match=re.escape(message)):
    losses.chunked_iwae_bound(APPROX, EXAMPLE_KEYS, num_samples, 4)


def test_any_integer_type_is_accepted_for_num_samples_and_chunk_size():
  expected = losses.chunked_iwae_bound(APPROX, EXAMPLE_KEYS, 10, 4)
  chex.assert_trees_all_close(
      losses.chunked_iwae_bound(APPROX, EXAMPLE_KEYS, np.int64(10), np.int32(4)), expected)
  chex.assert_trees_all_close(
      losses.chunked_iwae_bound(APPROX, EXAMPLE_KEYS, np.array([5, 10]), 4),
      jax.tree.map(lambda *a: jnp.stack(a),
                   losses.chunked_iwae_bound(APPROX, EXAMPLE_KEYS, 5, 4), expected))


def test_wrong_shapes_at_the_entry_points_are_clear_errors():
  with pytest.raises(AssertionError, match="rank"):
    losses.iwae_bound(jnp.zeros(5))  # [B] without the sample axis
  with pytest.raises(AssertionError, match="shape"):  # log w [B] instead of [C, B]
    losses.chunked_iwae_bound(lambda keys: APPROX(keys)[0], EXAMPLE_KEYS, 10, 4)
  with pytest.raises(AssertionError, match="shape"):
    losses.elbo_kl_form(jnp.zeros((3, BATCH)), jnp.zeros(BATCH + 1))
