"""Bernoulli, categorical and uniform categorical against exact enumeration and NumPy float64."""

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np

from jaxvae import distributions as dist


BERNOULLI_LOGITS = np.array([[-2.0, 0.0, 3.5], [1.0, -0.5, 0.2]], np.float32)  # [B=2, D=3]


def test_bernoulli_sums_to_one_by_enumeration_and_matches_numpy():
  xs = np.array(list(itertools.product([0.0, 1.0], repeat=3)), np.float32)  # [8, 3]
  log_p = jax.jit(dist.bernoulli_log_prob)(xs[:, None, :], BERNOULLI_LOGITS)  # [8, 2]
  np.testing.assert_allclose(np.sum(np.exp(np.float64(log_p)), 0), 1.0, rtol=1e-6)
  p = 1 / (1 + np.exp(-np.float64(BERNOULLI_LOGITS)))
  oracle = np.sum(np.where(xs[:, None, :] == 1, np.log(p), np.log1p(-p)), -1)
  np.testing.assert_allclose(log_p, oracle, rtol=1e-6, atol=1e-6)
  # Entropy by enumeration.
  np.testing.assert_allclose(dist.bernoulli_entropy(BERNOULLI_LOGITS),
                             -np.sum(np.exp(oracle) * oracle, 0), rtol=1e-5)
  np.testing.assert_allclose(dist.bernoulli_mean(BERNOULLI_LOGITS), p, rtol=1e-6)


def test_bernoulli_sample_mean():
  n = 20000
  x = jax.jit(dist.bernoulli_sample)(jax.random.key(0), jnp.broadcast_to(BERNOULLI_LOGITS, (n, 2, 3)))
  assert set(np.unique(x)) <= {0.0, 1.0} and x.dtype == jnp.float32
  p = 1 / (1 + np.exp(-np.float64(BERNOULLI_LOGITS)))
  assert np.all(np.abs(np.mean(x, 0) - p) < 4 * np.sqrt(p * (1 - p) / n))


CAT_LOGITS = np.array([[[0.5, -1.0, 2.0, 0.0], [-0.3, 0.3, 1.1, -2.0]]], np.float32)  # [1, D=2, C=4]


def _np_log_softmax(logits):
  logits = np.float64(logits)
  m = logits.max(-1, keepdims=True)
  return logits - m - np.log(np.sum(np.exp(logits - m), -1, keepdims=True))


def test_categorical_sums_to_one_by_enumeration_and_matches_numpy():
  xs = np.array(list(itertools.product(range(4), repeat=2)), np.int32)  # [16, 2]
  log_p = jax.jit(dist.categorical_log_prob)(xs, CAT_LOGITS)  # [16]
  np.testing.assert_allclose(np.sum(np.exp(np.float64(log_p))), 1.0, rtol=1e-6)
  ls = _np_log_softmax(CAT_LOGITS[0])
  np.testing.assert_allclose(log_p, ls[0, xs[:, 0]] + ls[1, xs[:, 1]], rtol=1e-6)
  np.testing.assert_allclose(dist.categorical_entropy(CAT_LOGITS),
                             [-np.sum(np.exp(np.float64(log_p)) * log_p)], rtol=1e-5)
  np.testing.assert_allclose(dist.categorical_probs(CAT_LOGITS)[0], np.exp(ls), rtol=1e-6)
  # Float-valued classes (e.g. from a pipeline) are accepted.
  np.testing.assert_allclose(dist.categorical_log_prob(np.float32(xs), CAT_LOGITS), log_p)


def test_categorical_sample_frequencies():
  n = 20000
  x = jax.jit(dist.categorical_sample)(jax.random.key(0), jnp.broadcast_to(CAT_LOGITS, (n, 2, 4)))
  assert x.shape == (n, 2) and x.dtype == jnp.int32
  p = np.exp(_np_log_softmax(CAT_LOGITS[0]))
  freq = np.stack([np.mean(x == c, 0) for c in range(4)], -1)  # [2, 4]
  assert np.all(np.abs(freq - p) < 4 * np.sqrt(p * (1 - p) / n))


def test_kl_categoricals_by_enumeration():
  q = CAT_LOGITS
  p = np.array([[[0.0, 0.0, 1.0, -1.0], [2.0, 0.1, -0.1, 0.0]]], np.float32)
  lq, lp = _np_log_softmax(q), _np_log_softmax(p)
  np.testing.assert_allclose(jax.jit(dist.kl_categoricals)(q, p),
                             np.sum(np.exp(lq) * (lq - lp), (-2, -1)), rtol=1e-5)
  np.testing.assert_allclose(dist.kl_categoricals(q, q), 0.0, atol=1e-6)
  np.testing.assert_allclose(dist.kl_categorical_uniform(q),
                             np.sum(np.exp(lq) * (lq - math.log(1 / 4)), (-2, -1)), rtol=1e-5)


def test_uniform_categorical_sums_to_one_and_sample_frequencies():
  xs = np.array(list(itertools.product(range(5), repeat=2)), np.int32)  # [25, 2]
  log_p = jax.jit(dist.uniform_categorical_log_prob, static_argnums=1)(xs, 5)
  assert log_p.shape == (25,)
  np.testing.assert_allclose(np.sum(np.exp(np.float64(log_p))), 1.0, rtol=1e-6)
  n = 20000
  z = dist.uniform_categorical_sample(jax.random.key(0), (n, 2), 5)
  assert z.dtype == jnp.int32 and z.min() == 0 and z.max() == 4
  freq = np.stack([np.mean(z == c, 0) for c in range(5)])
  assert np.all(np.abs(freq - 0.2) < 4 * math.sqrt(0.2 * 0.8 / n))
  # The uniform prior is the categorical with equal logits.
  np.testing.assert_allclose(log_p, dist.categorical_log_prob(xs, jnp.zeros((2, 5))), rtol=1e-6)


def test_pixel_levels_round_trip_every_8_bit_and_5_bit_level():
  k8 = np.arange(256)
  np.testing.assert_array_equal(dist.pixel_levels(jnp.float32(k8 / 255)), k8)
  k5 = np.arange(32)
  np.testing.assert_array_equal(dist.pixel_levels(jnp.float32(k5 / 31), num_bits=5), k5)
