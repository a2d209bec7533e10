"""The ELBO's two forms, beta weighting, the KL warm-up schedule and free bits, against closed forms."""

import math

import jax
import jax.numpy as jnp
import numpy as np

from jaxvae import distributions as dist
from jaxvae import losses

# One-dimensional model: p(z) = N(0, 1), p(x | z) = N(z, S^2); posterior approximation q = N(M, V).
X, S = np.array([0.9, -1.7, 0.2], np.float32), 0.5
M, LOG_V = np.array([0.5, -1.0, 0.3], np.float32), np.log(np.array([0.3, 0.6, 1.2], np.float32))


def _closed_form_elbo():
  """float64: E_q log N(x; z, S^2) - KL(N(M, V) || N(0, 1))."""
  v = np.exp(np.float64(LOG_V))
  expected_ll = -0.5 * math.log(2 * math.pi * S**2) - ((X - np.float64(M)) ** 2 + v) / (2 * S**2)
  kl = 0.5 * (v + np.float64(M) ** 2 - 1 - np.log(v))
  return expected_ll - kl


def _terms(key, k):
  z = dist.diag_gaussian_sample(key, jnp.broadcast_to(M[:, None], (k, 3, 1)), LOG_V[:, None])
  log_lik = dist.gaussian_log_prob(X[:, None], z, S)  # [K, B]
  log_prior = dist.standard_normal_log_prob(z)
  log_q = dist.diag_gaussian_log_prob(z, M[:, None], LOG_V[:, None])
  return log_lik, log_prior, log_q


def test_both_elbo_forms_are_unbiased():
  k = 20000
  log_lik, log_prior, log_q = jax.jit(_terms, static_argnums=1)(jax.random.key(0), k)
  kl = dist.kl_diag_gaussian_standard_normal(M[:, None], LOG_V[:, None])
  exact = _closed_form_elbo()
  # Per-sample terms of each estimator (K = 1), to measure their means and variances.
  analytic_form = np.float64(jax.vmap(lambda ll: losses.elbo_kl_form(ll[None], kl))(log_lik))
  mc_form = np.float64(jax.vmap(lambda w: losses.elbo(w[None]))(log_lik + log_prior - log_q))
  for samples in (analytic_form, mc_form):
    se = samples.std(0) / math.sqrt(k)
    assert np.all(np.abs(samples.mean(0) - exact) < 3 * se), (samples.mean(0), exact, se)
  # With a Monte Carlo KL on the same samples the two forms agree exactly.
  np.testing.assert_allclose(losses.elbo_kl_form(log_lik, jnp.mean(log_q - log_prior, 0)),
                             losses.elbo(log_lik + log_prior - log_q), rtol=1e-5, atol=1e-5)


def test_beta_weighting():
  log_lik = jnp.array([[-3.0, -4.0], [-5.0, -2.0]])
  kl = jnp.array([1.5, 0.25])
  for beta in (0.0, 1.0, 4.0):
    np.testing.assert_allclose(losses.elbo_kl_form(log_lik, kl, beta), [-4.0 - 1.5 * beta,
                                                                        -3.0 - 0.25 * beta])
  grad_beta = jax.grad(lambda b: jnp.sum(losses.elbo_kl_form(log_lik, kl, b)))(2.0)
  np.testing.assert_allclose(grad_beta, -1.75)


def test_kl_warmup_schedule():
  schedule = jax.jit(losses.kl_warmup_beta, static_argnums=(1, 2))
  np.testing.assert_allclose([schedule(s, 1000, 1.0) for s in (0, 250, 1000, 5000)],
                             [0.0, 0.25, 1.0, 1.0])
  np.testing.assert_allclose(schedule(500, 100, 4.0), 4.0)
  np.testing.assert_allclose(schedule(50, 100, 4.0), 2.0)
  np.testing.assert_allclose(losses.kl_warmup_beta(0, 0), 1.0)  # no warm-up
  # Traced steps are fine (the schedule runs inside the train step).
  np.testing.assert_allclose(jax.vmap(lambda s: losses.kl_warmup_beta(s, 10))(jnp.arange(12)),
                             np.minimum(np.arange(12) / 10, 1.0), rtol=1e-6)


def test_free_bits():
  kl = jnp.array([[0.01, 0.5, 2.0], [3.0, 0.0, 0.2]])
  np.testing.assert_allclose(losses.free_bits_kl(kl, 0.25), [0.25 + 0.5 + 2.0, 3.0 + 0.25 + 0.25])
  # Groups under the threshold get no gradient; the others get the plain KL's gradient.
  np.testing.assert_allclose(jax.grad(lambda k: jnp.sum(losses.free_bits_kl(k, 0.25)))(kl),
                             [[0.0, 1.0, 1.0], [1.0, 0.0, 0.0]])
  np.testing.assert_allclose(losses.free_bits_kl(kl, 0.0), jnp.sum(kl, -1))
  # From a diagonal posterior: per-dimension KL terms sum to the analytic KL.
  mean, log_var = jnp.array([[0.3, -2.0]]), jnp.array([[0.1, -1.0]])
  per_dim = jax.vmap(jax.vmap(lambda m, lv: dist.kl_diag_gaussian_standard_normal(m[None], lv[None])))(
      mean, log_var)
  np.testing.assert_allclose(losses.free_bits_kl(per_dim, 0.0),
                             dist.kl_diag_gaussian_standard_normal(mean, log_var), rtol=1e-6)
