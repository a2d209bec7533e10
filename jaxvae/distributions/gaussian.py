"""Gaussian distributions as pure functions.

Conventions for every function in `jaxvae.distributions`: the last axis is the event axis and is
reduced by log-probabilities, entropies and KLs; all leading axes are batch axes and broadcast.
"""

import math

import jax
import jax.numpy as jnp

_LOG_2PI = math.log(2.0 * math.pi)


def diag_gaussian_log_prob(x: jax.Array, mean: jax.Array, log_var: jax.Array) -> jax.Array:
  """log N(x; mean, diag(exp(log_var))), summed over the last axis.

  Args:
    x, mean, log_var: `[..., D]`, broadcastable.

  Returns:
    `[...]`: `-0.5 * sum_d [log(2 pi) + log_var_d + (x_d - mean_d)^2 / exp(log_var_d)]`.

  Example:
    >>> diag_gaussian_log_prob(jnp.zeros(2), jnp.zeros(2), jnp.zeros(2))  # -log(2 pi)
  """
  return -0.5 * jnp.sum(_LOG_2PI + log_var + jnp.square(x - mean) * jnp.exp(-log_var), axis=-1)


def diag_gaussian_sample(key: jax.Array, mean: jax.Array, log_var: jax.Array) -> jax.Array:
  """Reparameterized draw `mean + exp(log_var / 2) * eps`, `eps ~ N(0, I)`; shape of `mean`."""
  eps = jax.random.normal(key, jnp.broadcast_shapes(mean.shape, log_var.shape), mean.dtype)
  return mean + jnp.exp(0.5 * log_var) * eps


def standard_normal_log_prob(x: jax.Array) -> jax.Array:
  """log N(x; 0, I) summed over the last axis: `[..., D] -> [...]`."""
  return -0.5 * jnp.sum(_LOG_2PI + jnp.square(x), axis=-1)


def kl_diag_gaussian_standard_normal(mean: jax.Array, log_var: jax.Array) -> jax.Array:
  """KL(N(mean, diag(exp(log_var))) || N(0, I)) in closed form: `[..., D] -> [...]`.

  `0.5 * sum_d [exp(log_var_d) + mean_d^2 - 1 - log_var_d]` (Kingma & Welling, 2014, App. B).
  """
  return 0.5 * jnp.sum(jnp.exp(log_var) + jnp.square(mean) - 1.0 - log_var, axis=-1)
