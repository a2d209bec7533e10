"""The distributions' log-densities with and without `jit` (chex variants), against NumPy float64:
the same numbers whether a user calls them eagerly or inside a jitted step."""

import math

import chex
import jax.numpy as jnp
import numpy as np

from jaxvae import distributions as dist

_rng = np.random.default_rng(0)
X = _rng.normal(size=(6, 3)).astype(np.float32)
MEAN = _rng.normal(size=3).astype(np.float32)
LOG_VAR = _rng.normal(size=3).astype(np.float32)
LOGITS = _rng.normal(size=(6, 3)).astype(np.float32)
BITS = (_rng.random((6, 3)) < 0.5).astype(np.float32)


class DistributionVariantsTest(chex.TestCase):

  @chex.variants(with_jit=True, without_jit=True)
  def test_diag_gaussian_log_prob(self):
    got = self.variant(dist.diag_gaussian_log_prob)(X, MEAN, LOG_VAR)
    var = np.exp(np.float64(LOG_VAR))
    want = np.sum(-0.5 * (np.log(2 * math.pi * var) + (np.float64(X) - MEAN) ** 2 / var), -1)
    np.testing.assert_allclose(got, want, rtol=1e-5)

  @chex.variants(with_jit=True, without_jit=True)
  def test_full_gaussian_log_prob(self):
    tril = np.array([[1.2, 0, 0], [0.3, 0.8, 0], [-0.5, 0.2, 0.6]], np.float32)
    got = self.variant(dist.full_gaussian_log_prob)(X, MEAN, tril)
    cov = np.float64(tril) @ np.float64(tril).T
    diff = np.float64(X) - MEAN
    want = -0.5 * (3 * math.log(2 * math.pi) + np.linalg.slogdet(cov)[1]
                   + np.einsum("bi,ij,bj->b", diff, np.linalg.inv(cov), diff))
    np.testing.assert_allclose(got, want, rtol=1e-5)

  @chex.variants(with_jit=True, without_jit=True)
  def test_bernoulli_log_prob(self):
    got = self.variant(dist.bernoulli_log_prob)(BITS, LOGITS)
    p = 1 / (1 + np.exp(-np.float64(LOGITS)))
    want = np.sum(BITS * np.log(p) + (1 - BITS) * np.log1p(-p), -1)
    np.testing.assert_allclose(got, want, rtol=1e-5)

  @chex.variants(with_jit=True, without_jit=True)
  def test_standard_normal_log_prob(self):
    got = self.variant(dist.standard_normal_log_prob)(X)
    want = np.sum(-0.5 * (math.log(2 * math.pi) + np.float64(X) ** 2), -1)
    np.testing.assert_allclose(got, want, rtol=1e-5)
    chex.assert_trees_all_close(got, dist.diag_gaussian_log_prob(X, jnp.zeros(3), jnp.zeros(3)),
                                rtol=1e-6)
