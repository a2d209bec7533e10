"""The estimators of `jaxvae.losses.estimators` on a linear-Gaussian model, against oracles.

p(z) = N(0, I_d), p(x | z) = N(W z + b, s^2 I), q(z | x) = N(A x + c, diag exp(2 l)): the ELBO and its
gradient are in closed form (NumPy-free: differentiated by JAX in float64 from the analytic
expectation). Each estimator's mean over many independent draws must equal the gradient of its own
objective within Monte Carlo error: STL's the closed-form ELBO's; DReG's the plain reparameterized
IWAE gradient's (the independent unbiased estimator). DReG's and STL's variances must be lower than
the plain estimators' (q near the posterior). MIWAE with M = 1 is IWAE, with K = 1 the M-sample
ELBO; CIWAE interpolates ELBO and IWAE.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvae import losses
from jaxvae.losses import estimators

D_LATENT, D_OBS, BATCH, NOISE = 2, 3, 4, 0.8
_rng = np.random.default_rng(0)
W = _rng.normal(size=(D_OBS, D_LATENT))
BIAS = _rng.normal(size=D_OBS)
X = _rng.normal(size=(BATCH, D_LATENT)) @ W.T + BIAS + NOISE * _rng.normal(size=(BATCH, D_OBS))


def _near_posterior():
  """q's parameters (A, c, l): the exact posterior's, perturbed (so gradients are not zero)."""
  cov = np.linalg.inv(np.eye(D_LATENT) + W.T @ W / NOISE**2)  # the posterior covariance
  a = cov @ W.T / NOISE**2  # posterior mean = a (x - b)
  return {"a": a + 0.15, "c": -a @ BIAS - 0.2, "l": 0.5 * np.log(np.diag(cov)) + 0.1}


ENCODER = _near_posterior()  # NumPy float64; JAX takes them as float64 under `enable_x64`
DECODER = {"w": W, "b": BIAS}


def _log_weights(encoder, decoder, eps, frozen=False):
  """`[K, B]` log w for `z = mean + exp(l) eps`, `eps [K, B, d]`; `frozen`: log q with q's
  parameters held fixed (the path through z kept)."""
  x = jnp.float64(X)
  mean = x @ encoder["a"].T + encoder["c"]  # [B, d]
  z = mean + jnp.exp(encoder["l"]) * eps
  q_mean, q_l = (jax.lax.stop_gradient(mean), jax.lax.stop_gradient(encoder["l"])) if frozen \
      else (mean, encoder["l"])
  log_q = jnp.sum(-0.5 * ((z - q_mean) / jnp.exp(q_l)) ** 2 - q_l - 0.5 * math.log(2 * math.pi),
                  -1)
  log_prior = jnp.sum(-0.5 * z**2 - 0.5 * math.log(2 * math.pi), -1)
  pred = z @ decoder["w"].T + decoder["b"]
  log_lik = jnp.sum(-0.5 * ((x - pred) / NOISE) ** 2 - math.log(NOISE)
                    - 0.5 * math.log(2 * math.pi), -1)
  return log_lik + log_prior - log_q


def _exact_elbo(encoder, decoder):
  """`sum_b ELBO_b` in closed form."""
  x = jnp.float64(X)
  mean, var = x @ encoder["a"].T + encoder["c"], jnp.exp(2 * encoder["l"])
  resid = x - mean @ decoder["w"].T - decoder["b"]
  expected_sq = jnp.sum(resid**2, -1) + jnp.sum(decoder["w"] ** 2 @ var)
  log_lik = -0.5 * expected_sq / NOISE**2 - D_OBS * (math.log(NOISE) + 0.5 * math.log(2 * math.pi))
  log_prior = -0.5 * jnp.sum(mean**2 + var, -1) - 0.5 * D_LATENT * math.log(2 * math.pi)
  entropy = jnp.sum(encoder["l"]) + 0.5 * D_LATENT * math.log(2 * math.pi * math.e)
  return jnp.sum(log_lik + log_prior + entropy)


def _gradients(objective, k, n, frozen, seed=0):
  """`n` independent estimates of `grad_phi sum_b objective(log w)` (K = `k` each): a pytree of
  `[n, ...]` leaves, flattened to `[n, P]`."""
  def one(key):
    eps = jax.random.normal(key, (k, BATCH, D_LATENT), jnp.float64)
    return jax.grad(lambda e: jnp.sum(objective(_log_weights(e, DECODER, eps, frozen))))(ENCODER)
  grads = jax.vmap(one)(jax.random.split(jax.random.key(seed), n))
  return np.concatenate([np.asarray(g).reshape(n, -1) for g in jax.tree.leaves(grads)], axis=1)


@pytest.fixture(autouse=True)
def _float64():
  with jax.enable_x64(True):
    yield


def _within(estimates, expected, sigmas=4.0):
  """Each parameter's mean over the estimates is within `sigmas` standard errors of `expected`."""
  mean = estimates.mean(0)
  stderr = estimates.std(0, ddof=1) / math.sqrt(len(estimates))
  assert np.all(np.abs(mean - expected) <= sigmas * stderr + 1e-9), (mean, expected, stderr)


def test_stl_is_an_unbiased_estimate_of_the_elbo_gradient_with_lower_variance():
  exact = jax.grad(_exact_elbo)(ENCODER, DECODER)
  exact = np.concatenate([np.asarray(g).ravel() for g in jax.tree.leaves(exact)])
  for k in (1, 10):
    stl = _gradients(estimators.stl_elbo, k, 4000, frozen=True)
    plain = _gradients(losses.elbo, k, 4000, frozen=False)
    _within(stl, exact)
    _within(plain, exact)
    assert stl.var(0).sum() < plain.var(0).sum()


@pytest.mark.parametrize("k", [10, 100])
def test_dreg_is_an_unbiased_estimate_of_the_iwae_gradient_with_lower_variance(k):
  n = 3000 if k == 10 else 800
  dreg = _gradients(estimators.dreg_iwae, k, n, frozen=True)
  plain = _gradients(losses.iwae_bound, k, 4 * n, frozen=False, seed=1)
  stderr = np.sqrt(dreg.var(0) / n + plain.var(0) / (4 * n))
  assert np.all(np.abs(dreg.mean(0) - plain.mean(0)) <= 4 * stderr)
  assert dreg.var(0).sum() < plain.var(0).sum()


def test_dreg_value_is_the_iwae_bound_and_its_decoder_gradient_is_not_used():
  eps = jax.random.normal(jax.random.key(3), (5, BATCH, D_LATENT), jnp.float64)
  frozen = _log_weights(ENCODER, DECODER, eps, frozen=True)
  np.testing.assert_allclose(estimators.dreg_iwae(frozen), losses.iwae_bound(frozen), rtol=1e-12)
  np.testing.assert_allclose(estimators.stl_elbo(frozen), losses.elbo(frozen), rtol=1e-12)


def test_miwae_and_ciwae_limits():
  log_w = jax.random.normal(jax.random.key(4), (12, BATCH), jnp.float64) * 3
  np.testing.assert_allclose(estimators.miwae(log_w, 1), losses.iwae_bound(log_w), rtol=1e-12)
  np.testing.assert_allclose(estimators.miwae(log_w, 12), losses.elbo(log_w), rtol=1e-12)
  groups = np.asarray(log_w).reshape(3, 4, BATCH)
  expected = np.mean([np.logaddexp.reduce(g, 0) - math.log(4) for g in groups], 0)
  np.testing.assert_allclose(estimators.miwae(log_w, 3), expected, rtol=1e-12)
  np.testing.assert_allclose(estimators.ciwae(log_w, 1.0), losses.elbo(log_w), rtol=1e-12)
  np.testing.assert_allclose(estimators.ciwae(log_w, 0.0), losses.iwae_bound(log_w), rtol=1e-12)
  np.testing.assert_allclose(estimators.ciwae(log_w, 0.25),
                             0.25 * losses.elbo(log_w) + 0.75 * losses.iwae_bound(log_w))
  with pytest.raises(ValueError, match="equal groups"):
    estimators.miwae(log_w, 5)
  with pytest.raises(ValueError, match="beta"):
    estimators.ciwae(log_w, 1.5)
