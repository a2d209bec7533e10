"""Bernoulli distribution on logits, as pure functions (last axis is the event axis)."""

import jax
import jax.numpy as jnp


def bernoulli_log_prob(x: jax.Array, logits: jax.Array) -> jax.Array:
  """log Bernoulli(x; sigmoid(logits)) summed over the last axis: `[..., D] -> [...]`.

  `sum_d [x_d log sigmoid(l_d) + (1 - x_d) log sigmoid(-l_d)]`, stable for any logits; `x` may be
  fractional (then this is the negative binary cross-entropy).
  """
  return jnp.sum(x * jax.nn.log_sigmoid(logits) + (1.0 - x) * jax.nn.log_sigmoid(-logits), axis=-1)


def bernoulli_sample(key: jax.Array, logits: jax.Array) -> jax.Array:
  """A draw in {0., 1.} with `P(1) = sigmoid(logits)`; shape and dtype of `logits`."""
  return jax.random.bernoulli(key, jax.nn.sigmoid(logits)).astype(logits.dtype)


def bernoulli_mean(logits: jax.Array) -> jax.Array:
  """`sigmoid(logits)`."""
  return jax.nn.sigmoid(logits)


def bernoulli_entropy(logits: jax.Array) -> jax.Array:
  """Entropy in nats summed over the last axis: `[..., D] -> [...]`.

  `-sum_d [p_d log p_d + (1 - p_d) log(1 - p_d)]` with `p = sigmoid(logits)`, written with
  `log_sigmoid` so that it is exact and finite for any logits.
  """
  p = jax.nn.sigmoid(logits)
  return -jnp.sum(p * jax.nn.log_sigmoid(logits) + (1.0 - p) * jax.nn.log_sigmoid(-logits), axis=-1)
