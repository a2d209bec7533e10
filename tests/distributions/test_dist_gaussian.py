"""Diagonal, scaled, full-covariance and mixture Gaussians against closed forms, NumPy float64 and
numerical integration."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvae import distributions as dist


def _grid_2d(lo, hi, n):
  """A 2-D grid `[n * n, 2]` and the area of one cell."""
  t = np.linspace(lo, hi, n)
  xx, yy = np.meshgrid(t, t, indexing="ij")
  return np.stack([xx.ravel(), yy.ravel()], -1).astype(np.float32), (t[1] - t[0]) ** 2


def _np_mvn_log_prob(x, mean, cov):
  """float64 oracle: log N(x; mean, cov) from the inverse and log-determinant of `cov`."""
  x, mean, cov = (np.asarray(a, np.float64) for a in (x, mean, cov))
  d = x.shape[-1]
  diff = x - mean
  maha = np.einsum("...i,ij,...j->...", diff, np.linalg.inv(cov), diff)
  return -0.5 * (d * math.log(2 * math.pi) + np.linalg.slogdet(cov)[1] + maha)


MEAN = np.array([0.3, -0.5], np.float32)
LOG_VAR = np.log(np.array([0.5, 2.0], np.float32))
SCALE_TRIL = np.array([[0.8, 0.0], [0.9, 0.5]], np.float32)


def test_diag_gaussian_integrates_to_one_and_matches_numpy():
  grid, cell = _grid_2d(-10.0, 10.0, 401)
  log_p = jax.jit(dist.diag_gaussian_log_prob)(grid, MEAN, LOG_VAR)
  np.testing.assert_allclose(np.sum(np.exp(np.float64(log_p))) * cell, 1.0, atol=1e-4)
  oracle = _np_mvn_log_prob(grid[::997], MEAN, np.diag(np.exp(np.float64(LOG_VAR))))
  np.testing.assert_allclose(log_p[::997], oracle, rtol=1e-5, atol=1e-5)


def test_standard_normal_is_the_zero_mean_unit_variance_diag_gaussian():
  x = jax.random.normal(jax.random.key(0), (7, 3))
  np.testing.assert_allclose(jax.jit(dist.standard_normal_log_prob)(x),
                             dist.diag_gaussian_log_prob(x, jnp.zeros(3), jnp.zeros(3)), rtol=1e-6)
  z = dist.standard_normal_sample(jax.random.key(1), (4000, 3))
  assert z.shape == (4000, 3)
  np.testing.assert_allclose(np.mean(z, 0), 0.0, atol=4 / math.sqrt(4000))
  np.testing.assert_allclose(np.var(z, 0), 1.0, atol=4 * math.sqrt(2 / 4000))


def test_diag_gaussian_sample_moments_and_entropy():
  n = 20000
  mean, log_var = jnp.broadcast_to(MEAN, (n, 2)), jnp.broadcast_to(LOG_VAR, (n, 2))
  z = jax.jit(dist.diag_gaussian_sample)(jax.random.key(0), mean, log_var)
  var = np.exp(np.float64(LOG_VAR))
  assert np.all(np.abs(np.mean(z, 0) - MEAN) < 4 * np.sqrt(var / n))
  assert np.all(np.abs(np.var(z, 0) - var) < 4 * var * math.sqrt(2 / n))
  # Entropy: closed form vs the Monte Carlo estimate -E[log p(z)] within 3 standard errors.
  h = dist.diag_gaussian_entropy(LOG_VAR)
  np.testing.assert_allclose(h, 0.5 * np.sum(1 + np.log(2 * np.pi * var)), rtol=1e-6)
  neg_log_p = -np.float64(dist.diag_gaussian_log_prob(z, mean, log_var))
  assert abs(np.mean(neg_log_p) - h) < 3 * np.std(neg_log_p) / math.sqrt(n)


def test_diag_gaussian_sample_is_reparameterized():
  eps = jax.random.normal(jax.random.key(3), (2,))
  f = lambda m, lv: jnp.sum(dist.diag_gaussian_sample(jax.random.key(3), m, lv))
  g_mean, g_log_var = jax.grad(f, argnums=(0, 1))(jnp.asarray(MEAN), jnp.asarray(LOG_VAR))
  np.testing.assert_allclose(g_mean, 1.0)
  np.testing.assert_allclose(g_log_var, 0.5 * np.exp(0.5 * LOG_VAR) * eps, rtol=1e-5)


def test_gaussian_likelihood_with_fixed_and_learned_scale():
  x = jax.random.normal(jax.random.key(0), (5, 4))
  mean = jax.random.normal(jax.random.key(1), (5, 4))
  # A fixed scalar scale broadcasts over every dimension and equals the log-variance form.
  np.testing.assert_allclose(jax.jit(dist.gaussian_log_prob)(x, mean, 0.3),
                             dist.diag_gaussian_log_prob(x, mean, jnp.full(4, 2 * math.log(0.3))),
                             rtol=1e-5)
  # A learned per-dimension scale, with a floor.
  raw = jnp.array([-1000.0, -1.0, 0.0, 3.0])
  scale = dist.gaussian_scale_from_raw(raw, min_scale=1e-2)
  np.testing.assert_allclose(scale, np.log1p(np.exp(np.float64(raw))) + 1e-2, rtol=1e-6)
  assert scale[0] == pytest.approx(1e-2)
  np.testing.assert_allclose(dist.gaussian_log_prob(x, mean, scale),
                             _np_mvn_log_prob(x, mean, np.diag(np.float64(scale) ** 2)), rtol=1e-4)
  # Integrates to one in 1-D.
  t = np.linspace(-3.0, 3.0, 6001, dtype=np.float32)[:, None]
  log_p = dist.gaussian_log_prob(t, 0.2, 0.25)
  np.testing.assert_allclose(np.sum(np.exp(np.float64(log_p))) * (t[1, 0] - t[0, 0]), 1.0, atol=1e-4)
  # Samples.
  s = dist.gaussian_sample(jax.random.key(2), jnp.full((20000, 1), 0.2), 0.25)
  assert abs(np.mean(s) - 0.2) < 4 * 0.25 / math.sqrt(20000)
  assert abs(np.std(s) - 0.25) < 4 * 0.25 / math.sqrt(2 * 20000)


def test_full_gaussian_integrates_to_one_and_matches_numpy():
  grid, cell = _grid_2d(-8.0, 8.0, 401)
  log_p = jax.jit(dist.full_gaussian_log_prob)(grid, MEAN, SCALE_TRIL)
  np.testing.assert_allclose(np.sum(np.exp(np.float64(log_p))) * cell, 1.0, atol=1e-4)
  cov = np.float64(SCALE_TRIL) @ np.float64(SCALE_TRIL).T
  np.testing.assert_allclose(log_p[::997], _np_mvn_log_prob(grid[::997], MEAN, cov),
                             rtol=1e-5, atol=1e-4)
  np.testing.assert_allclose(dist.full_gaussian_entropy(SCALE_TRIL),
                             0.5 * (2 * (1 + math.log(2 * math.pi)) + np.linalg.slogdet(cov)[1]),
                             rtol=1e-6)
  # Only the lower triangle is read; a diagonal factor gives the diagonal Gaussian.
  upper_junk = SCALE_TRIL + np.triu(np.full((2, 2), 7.0, np.float32), 1)
  np.testing.assert_allclose(dist.full_gaussian_log_prob(grid[:5], MEAN, upper_junk), log_p[:5])
  diag = np.diag(np.exp(0.5 * LOG_VAR))
  np.testing.assert_allclose(dist.full_gaussian_log_prob(grid[:50], MEAN, diag),
                             dist.diag_gaussian_log_prob(grid[:50], MEAN, LOG_VAR), rtol=1e-5)


def test_full_gaussian_sample_moments_and_batch_broadcasting():
  n = 20000
  z = jax.jit(dist.full_gaussian_sample)(jax.random.key(0), jnp.broadcast_to(MEAN, (n, 2)),
                                         SCALE_TRIL)
  cov = np.float64(SCALE_TRIL) @ np.float64(SCALE_TRIL).T
  assert z.shape == (n, 2)
  assert np.all(np.abs(np.mean(z, 0) - MEAN) < 4 * np.sqrt(np.diag(cov) / n))
  # Entries of a sample covariance have variance (S_ij^2 + S_ii S_jj) / n.
  se = np.sqrt((cov**2 + np.outer(np.diag(cov), np.diag(cov))) / n)
  assert np.all(np.abs(np.cov(np.float64(z).T) - cov) < 4 * se)
  # Batched factors broadcast against batched values.
  tril = jnp.stack([SCALE_TRIL, 2 * SCALE_TRIL, np.eye(2, dtype=np.float32)])  # [3, 2, 2]
  x = jax.random.normal(jax.random.key(1), (4, 1, 2))
  out = dist.full_gaussian_log_prob(x, MEAN, tril)
  assert out.shape == (4, 3)
  np.testing.assert_allclose(out[2, 1], _np_mvn_log_prob(x[2, 0], MEAN, 4 * cov), rtol=1e-5)


def test_scale_tril_from_raw_is_a_valid_cholesky_factor():
  raw = jax.random.normal(jax.random.key(0), (3, 4, 4)) * 5
  tril = dist.scale_tril_from_raw(raw, min_scale=1e-3)
  assert np.all(np.triu(tril, 1) == 0)
  assert np.all(np.diagonal(tril, axis1=-2, axis2=-1) >= 1e-3)
  np.testing.assert_allclose(np.tril(tril, -1), np.tril(raw, -1))


MIX_LOGITS = np.array([0.5, -0.3, 0.0], np.float32)
MIX_MEANS = np.array([[-2.0, 0.0], [1.0, 1.5], [2.0, -1.0]], np.float32)
MIX_LOG_VARS = np.log(np.array([[0.5, 1.0], [0.3, 0.2], [1.5, 0.7]], np.float32))


def test_mixture_integrates_to_one_and_matches_numpy():
  grid, cell = _grid_2d(-9.0, 9.0, 401)
  log_p = jax.jit(dist.mixture_diag_gaussian_log_prob)(grid, MIX_LOGITS, MIX_MEANS, MIX_LOG_VARS)
  np.testing.assert_allclose(np.sum(np.exp(np.float64(log_p))) * cell, 1.0, atol=1e-4)
  pi = np.exp(MIX_LOGITS) / np.sum(np.exp(np.float64(MIX_LOGITS)))
  dens = sum(pi[m] * np.exp(_np_mvn_log_prob(grid[::997], MIX_MEANS[m],
                                             np.diag(np.exp(np.float64(MIX_LOG_VARS[m])))))
             for m in range(3))
  np.testing.assert_allclose(log_p[::997], np.log(dens), rtol=1e-5, atol=1e-5)


def test_mixture_sample_moments_and_gradients():
  n = 40000
  logits = jnp.broadcast_to(MIX_LOGITS, (n, 3))
  z = jax.jit(dist.mixture_diag_gaussian_sample)(jax.random.key(0), logits, MIX_MEANS, MIX_LOG_VARS)
  pi = np.exp(np.float64(MIX_LOGITS)) / np.sum(np.exp(np.float64(MIX_LOGITS)))
  mean = pi @ MIX_MEANS
  second = sum(pi[m] * (np.diag(np.exp(np.float64(MIX_LOG_VARS[m])))
                        + np.outer(MIX_MEANS[m], MIX_MEANS[m])) for m in range(3))
  cov = second - np.outer(mean, mean)
  np.testing.assert_allclose(dist.mixture_diag_gaussian_mean(MIX_LOGITS, MIX_MEANS), mean, rtol=1e-5)
  assert np.all(np.abs(np.mean(z, 0) - mean) < 4 * np.sqrt(np.diag(cov) / n))
  se = np.sqrt((cov**2 + np.outer(np.diag(cov), np.diag(cov))) / n) * 2  # heavier tails than normal
  assert np.all(np.abs(np.cov(np.float64(z).T) - cov) < 4 * se)
  # Gradients reach the component means (each draw moves with its own component's mean).
  g = jax.grad(lambda mu: jnp.sum(dist.mixture_diag_gaussian_sample(
      jax.random.key(1), logits[:100], mu, MIX_LOG_VARS)))(jnp.asarray(MIX_MEANS))
  assert np.all(np.isfinite(g)) and np.isclose(np.sum(g), 200.0)
