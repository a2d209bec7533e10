"""Discretized logistic mixture: exact normalization by enumeration, a NumPy float64 oracle, samples."""


import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvae import distributions as dist

# Three parameter sets (batch of 3) for one pixel with M = 3 components: ordinary, a component
# far outside [0, 1], and one with a scale at the floor.
LOGITS = np.array([[0.3, -0.2, 1.0], [0.0, 2.0, -1.0], [1.0, 1.0, 1.0]], np.float32)[:, None, :]
MEANS = np.array([[0.2, 0.5, 0.9], [-3.0, 0.01, 1.5], [0.5, 0.3, 0.7]], np.float32)[:, None, :]
LOG_SCALES = np.array([[-2.0, -3.0, -1.5], [0.0, -4.0, -2.5], [-9.0, -5.0, -0.5]], np.float32)[:, None, :]


def _np_log_prob(x, logits, means, log_scales, num_bits, min_log_scale=-7.0):
  """float64 oracle: mixture of `CDF(upper) - CDF(lower)` with open-ended first and last bins."""
  levels = 2**num_bits - 1
  k = np.round(np.float64(x) * levels)[..., None]
  s = np.exp(np.maximum(np.float64(log_scales), min_log_scale))
  cdf = lambda y: 0.5 * (1 + np.tanh(0.5 * (y - np.float64(means)) / s))
  upper = np.where(k == levels, 1.0, cdf((k + 0.5) / levels))
  lower = np.where(k == 0, 0.0, cdf((k - 0.5) / levels))
  pi = np.exp(_np_log_softmax(logits))
  return np.sum(np.log(np.sum(pi * (upper - lower), -1)), -1)


def _np_log_softmax(logits):
  logits = np.float64(logits)
  return logits - np.log(np.sum(np.exp(logits), -1, keepdims=True))


@pytest.mark.parametrize("num_bits", [8, 3, 1])
def test_masses_of_all_levels_sum_to_one_and_match_numpy(num_bits):
  levels = 2**num_bits
  x = (np.arange(levels, dtype=np.float32) / (levels - 1))[:, None, None]  # [L, 1, D=1]
  log_p = jax.jit(dist.discretized_logistic_mixture_log_prob, static_argnums=4)(
      x, LOGITS, MEANS, LOG_SCALES, num_bits)  # [L, 3]
  np.testing.assert_allclose(np.sum(np.exp(np.float64(log_p)), 0), 1.0, rtol=1e-5)
  oracle = _np_log_prob(x, LOGITS, MEANS, LOG_SCALES, num_bits)
  mask = oracle > -30  # float64 differences of CDFs lose all digits far in the tails
  np.testing.assert_allclose(np.float64(log_p)[mask], oracle[mask], rtol=2e-4, atol=2e-4)


def test_pixels_are_independent_given_the_parameters():
  x = jnp.array([[0.0, 100 / 255, 1.0]])
  params = [jnp.broadcast_to(a[0], (3, 3)) for a in (LOGITS, MEANS, LOG_SCALES)]
  joint = dist.discretized_logistic_mixture_log_prob(x, *params)
  single = [dist.discretized_logistic_mixture_log_prob(x[:, d:d + 1], *[p[d:d + 1] for p in params])
            for d in range(3)]
  np.testing.assert_allclose(joint, sum(single), rtol=1e-6)


def test_sample_frequencies_match_the_masses():
  n, num_bits = 40000, 3
  params = [jnp.broadcast_to(a[0], (n, 1, 3)) for a in (LOGITS, MEANS, LOG_SCALES)]
  x = jax.jit(dist.discretized_logistic_mixture_sample, static_argnums=4)(
      jax.random.key(0), *params, num_bits)
  assert x.shape == (n, 1)
  k = np.round(np.float64(x[:, 0]) * 7)
  np.testing.assert_allclose(k, np.float64(x[:, 0]) * 7, atol=1e-5)  # on the grid
  p = np.exp(_np_log_prob((np.arange(8) / 7)[:, None], LOGITS[0], MEANS[0], LOG_SCALES[0], num_bits))
  freq = np.array([np.mean(k == j) for j in range(8)])
  assert np.all(np.abs(freq - p) < 4 * np.sqrt(p * (1 - p) / n) + 1e-4)


def test_gradients_match_finite_differences():
  x = jnp.array([[0.0, 37 / 255, 200 / 255, 1.0]])
  params = [jnp.broadcast_to(a[0], (4, 3)).astype(jnp.float32) for a in (LOGITS, MEANS, LOG_SCALES)]
  params[2] = jnp.maximum(params[2], -3.0)  # away from the floor, where the gradient is zero
  f = lambda *p: jnp.sum(dist.discretized_logistic_mixture_log_prob(x, *p))
  grads = jax.grad(f, argnums=(0, 1, 2))(*params)
  f64 = lambda *p: np.sum(_np_log_prob(np.float64(x), *p, num_bits=8))
  eps = 1e-6
  for i in range(3):
    for idx in [(0, 0), (1, 1), (2, 2), (3, 0)]:
      plus = [np.float64(p) for p in params]
      minus = [np.float64(p) for p in params]
      plus[i][idx] += eps
      minus[i][idx] -= eps
      fd = (f64(*plus) - f64(*minus)) / (2 * eps)
      assert abs(grads[i][idx] - fd) < 1e-3 * max(1.0, abs(fd)), (i, idx, grads[i][idx], fd)
