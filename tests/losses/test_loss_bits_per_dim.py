"""Bits per dimension: discrete masses and dequantized densities, against exact values."""

import math

import jax.numpy as jnp
import numpy as np

from jaxvae import distributions as dist
from jaxvae import losses


def test_uniform_models_give_8_bits_per_dim():
  d = 12
  # A uniform categorical over 256 levels: log P = -D log 256.
  x = jnp.zeros((3, d), jnp.int32)
  np.testing.assert_allclose(losses.bits_per_dim(dist.uniform_categorical_log_prob(x, 256), d), 8.0,
                             rtol=1e-6)
  # The uniform density on [0, 1]^D for dequantized data x = (k + u) / 256: log p = 0.
  np.testing.assert_allclose(losses.bits_per_dim(jnp.zeros(3), d, bin_width=1 / 256), 8.0, rtol=1e-6)
  # The same data in [-1, 1]: density 2^-D, bins of width 2 / 256.
  np.testing.assert_allclose(losses.bits_per_dim(jnp.full(3, -d * math.log(2)), d, bin_width=2 / 256),
                             8.0, rtol=1e-6)
  # Binary data under Bernoulli(1/2): 1 bit per dimension.
  np.testing.assert_allclose(losses.bits_per_dim(dist.bernoulli_log_prob(jnp.ones(d), jnp.zeros(d)), d),
                             1.0, rtol=1e-6)


def test_dequantized_density_bound_is_consistent_with_the_discrete_mass():
  """For a Gaussian density on dequantized 8-bit data, E_u[-log p((k + u) / 256)] + D log 256 in bits
  is at least the exact -log P(k) (Jensen), and equal for a density that is constant on each bin."""
  mean, scale = 0.4, 0.1
  k = np.array([30, 102, 200])
  edges = np.stack([k, k + 1], -1) / 256
  cdf = lambda y: 0.5 * (1 + np.vectorize(math.erf)((y - mean) / (scale * math.sqrt(2))))
  exact_bpd = -np.log(cdf(edges[:, 1]) - cdf(edges[:, 0])) / math.log(2)  # [3], D = 1 each
  u = (np.arange(1000) + 0.5) / 1000  # midpoint rule for E_u
  y = (k[:, None] + u) / 256
  expected_log_density = np.mean(np.float64(
      dist.gaussian_log_prob(jnp.float32(y)[..., None], mean, scale)), -1)
  bpd = np.float64(losses.bits_per_dim(jnp.float32(expected_log_density), 1, bin_width=1 / 256))
  assert np.all(bpd >= exact_bpd - 1e-4) and np.all(bpd - exact_bpd < 0.01), (bpd, exact_bpd)
  # Piecewise-constant density P(k) * 256 on each bin: the conversion is exact.
  piecewise = np.log((cdf(edges[:, 1]) - cdf(edges[:, 0])) * 256)
  np.testing.assert_allclose(losses.bits_per_dim(jnp.float32(piecewise), 1, bin_width=1 / 256),
                             exact_bpd, rtol=1e-5)
