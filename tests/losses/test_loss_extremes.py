"""float32 stability of the objectives at extremes: K = 5000, log weights spanning 1e4 nats,
logits of +-100 and log-variances of +-30; finite values and gradients under jit."""

import jax
import jax.numpy as jnp
import numpy as np

from jaxvae import distributions as dist
from jaxvae import losses


def _assert_finite(tree):
  for leaf in jax.tree.leaves(tree):
    assert np.all(np.isfinite(np.asarray(leaf))), tree


def test_chunked_iwae_at_k_5000_with_extreme_weights_and_gradients():
  # q(z | x) with log-variances of +-30 against a standard normal prior and a Bernoulli decoder
  # with logits of +-100: log weights range over ~1e13 nats.
  mean = jnp.array([[0.0, 3.0], [-2.0, 0.5], [1.0, -1.0]])
  log_var = jnp.array([[-30.0, 30.0], [30.0, -30.0], [0.0, 0.0]])
  x = jnp.array([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0], [1.0, 1.0, 0.0]])

  def log_weights_fn(params, keys):  # keys [C, B]
    mean, log_var, decoder = params

    def one(key, x_b, m, lv):
      z = dist.diag_gaussian_sample(key, m, lv)
      logits = jnp.clip(z @ decoder, -100.0, 100.0)
      return (dist.bernoulli_log_prob(x_b, logits) + dist.standard_normal_log_prob(z)
              - dist.diag_gaussian_log_prob(z, m, lv))

    return jax.vmap(jax.vmap(one), in_axes=(0, None, None, None))(keys, x, mean, log_var)

  params = (mean, log_var, jnp.full((2, 3), 100.0))
  keys = jax.random.split(jax.random.key(0), 3)

  def objective(params):
    iwae, elbo = losses.chunked_iwae_bound(lambda k: log_weights_fn(params, k), keys, 5000, 1000)
    return jnp.sum(iwae), (iwae, elbo)

  grads, (iwae, elbo) = jax.jit(jax.grad(objective, has_aux=True))(params)
  _assert_finite((grads, iwae, elbo))
  assert np.all(iwae >= elbo)
  # The plain bound on a [5000, B] array of weights 1e4 nats apart.
  log_w = jnp.concatenate([jnp.full((4999, 2), -1e4), jnp.zeros((1, 2))])
  np.testing.assert_allclose(losses.iwae_bound(log_w), -np.log(5000.0), rtol=1e-6)
  _assert_finite(jax.grad(lambda w: jnp.sum(losses.iwae_bound(w)))(log_w))


def test_objectives_at_extreme_posteriors():
  mean = jnp.array([[0.0, 30.0], [-5.0, 0.5]])
  log_var = jnp.array([[-30.0, 30.0], [30.0, -30.0]])
  log_lik = jnp.array([[-1e4, -1.0], [-2e4, -3.0]])

  def objective(mean, log_var, beta):
    kl_per_dim = 0.5 * (jnp.expm1(log_var) - log_var + jnp.square(mean))
    kl = losses.free_bits_kl(kl_per_dim, 0.5)
    return jnp.sum(losses.elbo_kl_form(log_lik, kl, beta))

  step = jnp.asarray(10**9)
  _assert_finite(jax.jit(jax.value_and_grad(objective, argnums=(0, 1)))(
      mean, log_var, losses.kl_warmup_beta(step, 1000)))
  _assert_finite(losses.bits_per_dim(jnp.array([-1e6, 0.0]), 784, bin_width=1 / 256))


def test_score_function_at_extreme_logits():
  logits = jnp.array([-100.0, 100.0, 0.0, 30.0])

  def estimate(key, theta):
    z = dist.bernoulli_sample(key, jnp.broadcast_to(theta, (8, 4)))
    log_q = dist.bernoulli_log_prob(z, theta)
    f = jnp.sum(z, -1) - log_q
    return jnp.mean(losses.score_function_surrogate(f, log_q, losses.leave_one_out_baseline(f)))

  _assert_finite(jax.jit(jax.value_and_grad(estimate, argnums=1))(jax.random.key(0), logits))
