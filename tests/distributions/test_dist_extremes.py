"""float32 stability at extremes: logits of +-100 and log-variances of +-30 give finite values and
finite gradients, under jit."""

import jax
import jax.numpy as jnp
import numpy as np

from jaxvae import distributions as dist

LOGITS = jnp.array([-100.0, -30.0, 0.0, 30.0, 100.0])
LOG_VARS = jnp.array([-30.0, -10.0, 0.0, 10.0, 30.0])


def _assert_finite(tree):
  for leaf in jax.tree.leaves(tree):
    assert np.all(np.isfinite(np.asarray(leaf))), tree


def _value_and_grads(f, *args):
  return jax.jit(jax.value_and_grad(lambda *a: jnp.sum(f(*a)), argnums=tuple(range(len(args)))))(*args)


def test_bernoulli_at_extreme_logits():
  x = jnp.array([0.0, 1.0, 0.5, 0.0, 1.0])
  for xs in (x, 1.0 - x):
    _assert_finite(_value_and_grads(lambda l: dist.bernoulli_log_prob(xs, l), LOGITS))
  _assert_finite(_value_and_grads(dist.bernoulli_entropy, LOGITS))
  np.testing.assert_allclose(dist.bernoulli_log_prob(jnp.zeros(1), jnp.array([100.0])), -100.0)
  _assert_finite(dist.bernoulli_sample(jax.random.key(0), LOGITS))


def test_categorical_at_extreme_logits():
  logits = jnp.stack([LOGITS, -LOGITS, jnp.roll(LOGITS, 2)])[None]  # [1, 3, 5]
  for x in (jnp.array([0, 4, 2]), jnp.array([4, 0, 0])):
    _assert_finite(_value_and_grads(lambda l: dist.categorical_log_prob(x, l), logits))
  _assert_finite(_value_and_grads(dist.categorical_entropy, logits))
  _assert_finite(_value_and_grads(dist.kl_categoricals, logits, -logits))
  _assert_finite(_value_and_grads(dist.kl_categorical_uniform, logits))


def test_gaussians_at_extreme_log_variances():
  x = jnp.array([-1.0, 0.5, 0.0, 2.0, -3.0])
  mean = jnp.array([-1.0, 0.4, 0.0, -5.0, 30.0])
  _assert_finite(_value_and_grads(dist.diag_gaussian_log_prob, x, mean, LOG_VARS))
  _assert_finite(_value_and_grads(dist.diag_gaussian_entropy, LOG_VARS))
  _assert_finite(_value_and_grads(dist.kl_diag_gaussian_standard_normal, mean, LOG_VARS))
  _assert_finite(_value_and_grads(dist.kl_diag_gaussians, mean, LOG_VARS, x, -LOG_VARS))
  _assert_finite(_value_and_grads(dist.kl_diag_gaussians, mean, LOG_VARS, x, LOG_VARS[::-1]))
  _assert_finite(_value_and_grads(
      lambda m, lv: dist.diag_gaussian_sample(jax.random.key(0), m, lv), mean, LOG_VARS))
  scale_raw = jnp.array([-100.0, -30.0, 0.0, 30.0, 100.0])
  _assert_finite(_value_and_grads(
      lambda r: dist.gaussian_log_prob(x, mean, dist.gaussian_scale_from_raw(r)), scale_raw))
  tril = jnp.diag(jnp.exp(0.5 * LOG_VARS)) + jnp.tril(jnp.ones((5, 5)), -1)
  _assert_finite(_value_and_grads(dist.full_gaussian_log_prob, x, mean, tril))
  _assert_finite(_value_and_grads(dist.kl_full_gaussian_standard_normal, mean, tril))
  _assert_finite(_value_and_grads(dist.full_gaussian_entropy, tril))
  for mix_logits in (jnp.array([100.0, -100.0]), jnp.array([-100.0, 100.0])):
    _assert_finite(_value_and_grads(dist.mixture_diag_gaussian_log_prob, x, mix_logits,
                                    jnp.stack([mean, x]), jnp.stack([LOG_VARS, -LOG_VARS])))


def test_discretized_logistic_at_extremes():
  x = jnp.array([0.0, 1.0, 0.5, 1 / 255, 254 / 255])
  logits = jnp.stack([LOGITS, -LOGITS, jnp.zeros(5)], -1)  # [5, 3]
  means = jnp.stack([jnp.full(5, -100.0), jnp.full(5, 100.0), x], -1)
  log_scales = jnp.stack([LOG_VARS, -LOG_VARS, jnp.full(5, -7.0)], -1)
  for bits in (8, 5):
    out = _value_and_grads(
        lambda l, m, s: dist.discretized_logistic_mixture_log_prob(x, l, m, s, num_bits=bits),
        logits, means, log_scales)
    _assert_finite(out)
  # A pixel far from every component still has a finite (very negative) log mass.
  far = dist.discretized_logistic_mixture_log_prob(
      jnp.array([0.5]), jnp.zeros((1, 1)), jnp.full((1, 1), 100.0), jnp.full((1, 1), -7.0))
  assert np.isfinite(far) and far < -1e4
