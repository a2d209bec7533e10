"""Per-example bounds on log p(x) from log importance weights.

A model's `log_weights(x, keys)` returns `log w[k, b] = log p(x_b, z_kb) - log q(z_kb | x_b)` with
`z_kb ~ q(z | x_b)`, shape `[K, B]`. Every bound here is a function of those weights alone and
returns one value per example, `[B]`, with no reduction over the batch.
"""

import math

import jax
import jax.numpy as jnp


def elbo(log_weights: jax.Array) -> jax.Array:
  """Monte Carlo ELBO `mean_k log w[k, b]` = `E_q[log p(x, z) - log q(z | x)]`: `[K, B] -> [B]`."""
  return jnp.mean(log_weights, axis=0)


def iwae_bound(log_weights: jax.Array) -> jax.Array:
  """IWAE bound `logsumexp_k log w[k, b] - log K` (Burda et al., 2016): `[K, B] -> [B]`.

  With K = 1 it is the ELBO; it increases with K on average and tends to log p(x).
  """
  return jax.nn.logsumexp(log_weights, axis=0) - math.log(log_weights.shape[0])


def bits_per_dim(log_px: jax.Array, num_dims: int) -> jax.Array:
  """`-log p(x) / (D log 2)`: nats per example `[B]` to bits per dimension `[B]`."""
  return -log_px / (num_dims * math.log(2.0))
