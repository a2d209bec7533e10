"""KL divergences: analytic vs Monte Carlo (3 standard errors), vs NumPy float64, KL >= 0, KL(q||q) = 0."""

import math

import hypothesis
import hypothesis.extra.numpy as hnp
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np

from jaxvae import distributions as dist


def _np_kl_mvn(mean_q, cov_q, mean_p, cov_p):
  """float64 oracle from covariance matrices: inverse, trace and log-determinants."""
  mean_q, cov_q, mean_p, cov_p = (np.asarray(a, np.float64) for a in (mean_q, cov_q, mean_p, cov_p))
  d = mean_q.shape[-1]
  inv_p = np.linalg.inv(cov_p)
  diff = mean_p - mean_q
  return 0.5 * (np.trace(inv_p @ cov_q) + diff @ inv_p @ diff - d
                + np.linalg.slogdet(cov_p)[1] - np.linalg.slogdet(cov_q)[1])


RNG = np.random.default_rng(0)
D = 3
MEAN_Q, MEAN_P = RNG.normal(size=(2, D)).astype(np.float32)
LOG_VAR_Q, LOG_VAR_P = RNG.normal(size=(2, D)).astype(np.float32)
TRIL_Q = np.tril(RNG.normal(size=(D, D)) * 0.5, -1).astype(np.float32) + np.diag([0.7, 1.2, 0.4]).astype(np.float32)
TRIL_P = np.tril(RNG.normal(size=(D, D)) * 0.5, -1).astype(np.float32) + np.diag([1.1, 0.6, 0.9]).astype(np.float32)


def test_gaussian_kls_match_numpy_float64():
  cov = lambda lv: np.diag(np.exp(np.float64(lv)))
  np.testing.assert_allclose(jax.jit(dist.kl_diag_gaussians)(MEAN_Q, LOG_VAR_Q, MEAN_P, LOG_VAR_P),
                             _np_kl_mvn(MEAN_Q, cov(LOG_VAR_Q), MEAN_P, cov(LOG_VAR_P)), rtol=1e-5)
  np.testing.assert_allclose(jax.jit(dist.kl_diag_gaussian_standard_normal)(MEAN_Q, LOG_VAR_Q),
                             _np_kl_mvn(MEAN_Q, cov(LOG_VAR_Q), np.zeros(D), np.eye(D)), rtol=1e-5)
  cq, cp = (np.float64(t) @ np.float64(t).T for t in (TRIL_Q, TRIL_P))
  np.testing.assert_allclose(jax.jit(dist.kl_full_gaussians)(MEAN_Q, TRIL_Q, MEAN_P, TRIL_P),
                             _np_kl_mvn(MEAN_Q, cq, MEAN_P, cp), rtol=1e-5)
  np.testing.assert_allclose(jax.jit(dist.kl_full_gaussian_standard_normal)(MEAN_Q, TRIL_Q),
                             _np_kl_mvn(MEAN_Q, cq, np.zeros(D), np.eye(D)), rtol=1e-5)


def _mc_within_3_se(log_q, log_p, analytic):
  diff = np.float64(log_q) - np.float64(log_p)
  se = np.std(diff) / math.sqrt(diff.size)
  assert abs(np.mean(diff) - analytic) < 3 * se, (np.mean(diff), analytic, se)


def test_analytic_kls_equal_monte_carlo_within_3_standard_errors():
  n = 20000
  z = dist.diag_gaussian_sample(jax.random.key(0), jnp.broadcast_to(MEAN_Q, (n, D)), LOG_VAR_Q)
  log_q = dist.diag_gaussian_log_prob(z, MEAN_Q, LOG_VAR_Q)
  _mc_within_3_se(log_q, dist.diag_gaussian_log_prob(z, MEAN_P, LOG_VAR_P),
                  dist.kl_diag_gaussians(MEAN_Q, LOG_VAR_Q, MEAN_P, LOG_VAR_P))
  _mc_within_3_se(log_q, dist.standard_normal_log_prob(z),
                  dist.kl_diag_gaussian_standard_normal(MEAN_Q, LOG_VAR_Q))
  z = dist.full_gaussian_sample(jax.random.key(1), jnp.broadcast_to(MEAN_Q, (n, D)), TRIL_Q)
  log_q = dist.full_gaussian_log_prob(z, MEAN_Q, TRIL_Q)
  _mc_within_3_se(log_q, dist.full_gaussian_log_prob(z, MEAN_P, TRIL_P),
                  dist.kl_full_gaussians(MEAN_Q, TRIL_Q, MEAN_P, TRIL_P))
  _mc_within_3_se(log_q, dist.standard_normal_log_prob(z),
                  dist.kl_full_gaussian_standard_normal(MEAN_Q, TRIL_Q))
  logits_q = jnp.asarray(RNG.normal(size=(2, 5)), jnp.float32)
  logits_p = jnp.asarray(RNG.normal(size=(2, 5)), jnp.float32)
  c = dist.categorical_sample(jax.random.key(2), jnp.broadcast_to(logits_q, (n, 2, 5)))
  _mc_within_3_se(dist.categorical_log_prob(c, logits_q), dist.categorical_log_prob(c, logits_p),
                  dist.kl_categoricals(logits_q, logits_p))


def test_monte_carlo_kl_of_a_mixture_matches_quadrature():
  """q = N(0.5, 0.6^2) against a 1-D mixture prior p: no closed form; float64 quadrature oracle."""
  logits, means = jnp.array([0.2, -0.1]), jnp.array([[-1.0], [1.5]])
  log_vars = jnp.log(jnp.array([[0.5], [0.8]]))
  mean_q, log_var_q = jnp.array([0.5]), jnp.log(jnp.array([0.36]))
  sample_q = lambda k: dist.diag_gaussian_sample(k, mean_q, log_var_q)
  log_q = lambda z: dist.diag_gaussian_log_prob(z, mean_q, log_var_q)
  log_p = lambda z: dist.mixture_diag_gaussian_log_prob(z, logits, means, log_vars)
  n = 4000
  kl = jax.jit(lambda k: dist.monte_carlo_kl(k, sample_q, log_q, log_p, n))(jax.random.key(0))
  zs = jax.vmap(sample_q)(jax.random.split(jax.random.key(0), n))
  diffs = np.float64(log_q(zs) - log_p(zs))
  np.testing.assert_allclose(kl, np.mean(diffs), rtol=1e-5)  # the estimator is that mean
  t = np.linspace(-6.0, 7.0, 20001)
  q = np.exp(-0.5 * (t - 0.5) ** 2 / 0.36) / math.sqrt(2 * math.pi * 0.36)
  pi = np.exp([0.2, -0.1]) / np.sum(np.exp([0.2, -0.1]))
  p = sum(w * np.exp(-0.5 * (t - m) ** 2 / v) / math.sqrt(2 * math.pi * v)
          for w, m, v in zip(pi, [-1.0, 1.5], [0.5, 0.8]))
  exact = np.sum(q * (np.log(q) - np.log(p))) * (t[1] - t[0])
  assert abs(float(kl) - exact) < 3 * np.std(diffs) / math.sqrt(n), (kl, exact)


_floats = st.floats(-4.0, 4.0, width=32)
_kl_diag = jax.jit(dist.kl_diag_gaussians)
_kl_full = jax.jit(dist.kl_full_gaussians)
_kl_cat = jax.jit(dist.kl_categoricals)


@hypothesis.settings(max_examples=60, deadline=None, derandomize=True)
@hypothesis.given(hnp.arrays(np.float32, (4, D), elements=_floats),
                  hnp.arrays(np.float32, (2, D, D), elements=_floats),
                  hnp.arrays(np.float32, (2, 2, 4), elements=_floats))
def test_kl_is_nonnegative_and_zero_iff_equal(diag, tril, logits):
  mq, lq, mp, lp = diag
  assert _kl_diag(mq, lq, mp, lp) >= 0
  assert _kl_diag(mq, lq, mq, lq) == 0  # exact: expm1(0) - 0 + 0
  lq_full, lp_full = (dist.scale_tril_from_raw(t, 0.1) for t in tril)
  assert _kl_full(mq, lq_full, mp, lp_full) >= -1e-4
  assert abs(_kl_full(mq, lq_full, mq, lq_full)) < 1e-4
  assert _kl_cat(logits[0], logits[1]) >= -1e-6
  assert abs(_kl_cat(logits[0], logits[0])) < 1e-6
  assert dist.kl_diag_gaussian_standard_normal(mq, lq) >= 0
  assert dist.kl_diag_gaussian_standard_normal(jnp.zeros(D), jnp.zeros(D)) == 0
