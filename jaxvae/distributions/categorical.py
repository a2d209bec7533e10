"""Categorical distributions: discrete latents and 256-level pixel likelihoods, as pure functions.

Layout: `D` independent categorical variables with `C` classes each. Values `x` are integer classes
`[..., D]` (any integer dtype, or floats holding integers); `logits` are `[..., D, C]`. The event axis
`D` is reduced by log-probabilities, entropies and KLs; leading axes broadcast.

Pixel likelihoods: images arrive from `jaxvae.data` as floats in `[0, 1]`, flattened by the model to
`[..., D]`. `pixel_levels(x, num_bits)` maps them to integer levels `round(x * (2^bits - 1))`, so the
categorical-256 likelihood of an 8-bit image is
`categorical_log_prob(pixel_levels(x), logits)` with `logits [..., D, 256]`.
"""

import math

import jax
import jax.numpy as jnp


def pixel_levels(x: jax.Array, num_bits: int = 8) -> jax.Array:
  """Integer intensity levels `round(x * (2^num_bits - 1))` (int32) of pixels `x` in `[0, 1]`."""
  return jnp.round(x * (2**num_bits - 1)).astype(jnp.int32)


def categorical_log_prob(x: jax.Array, logits: jax.Array) -> jax.Array:
  """`sum_d log softmax(logits_d)[x_d]`: `x [..., D]` integer classes, `logits [..., D, C]` -> `[...]`.

  Example:
    >>> categorical_log_prob(pixel_levels(images), decoder_logits)  # categorical-256 likelihood
  """
  x = jnp.asarray(x).astype(jnp.int32)
  shape = jnp.broadcast_shapes(x.shape, logits.shape[:-1])
  log_p = jnp.broadcast_to(jax.nn.log_softmax(logits, axis=-1), shape + logits.shape[-1:])
  x = jnp.broadcast_to(x, shape)
  return jnp.sum(jnp.take_along_axis(log_p, x[..., None], axis=-1)[..., 0], axis=-1)


def categorical_sample(key: jax.Array, logits: jax.Array) -> jax.Array:
  """Integer classes `[..., D]` (int32) drawn from `softmax(logits)`, `logits [..., D, C]`."""
  return jax.random.categorical(key, logits, axis=-1).astype(jnp.int32)


def categorical_probs(logits: jax.Array) -> jax.Array:
  """`softmax(logits)` over the class axis: `[..., D, C] -> [..., D, C]`."""
  return jax.nn.softmax(logits, axis=-1)


def categorical_entropy(logits: jax.Array) -> jax.Array:
  """`-sum_d sum_c p_dc log p_dc` with `p = softmax(logits)`: `[..., D, C] -> [...]`."""
  log_p = jax.nn.log_softmax(logits, axis=-1)
  return -jnp.sum(jnp.exp(log_p) * log_p, axis=(-2, -1))


def kl_categoricals(logits_q: jax.Array, logits_p: jax.Array) -> jax.Array:
  """KL(q || p) `= sum_d sum_c q_dc (log q_dc - log p_dc)`: `[..., D, C] -> [...]`."""
  log_q = jax.nn.log_softmax(logits_q, axis=-1)
  log_p = jax.nn.log_softmax(logits_p, axis=-1)
  return jnp.sum(jnp.exp(log_q) * (log_q - log_p), axis=(-2, -1))


def uniform_categorical_log_prob(x: jax.Array, num_classes: int) -> jax.Array:
  """Uniform prior over `num_classes` classes for each of `D` discrete latents: `[..., D] -> [...]`.

  `-D log C` for every valid `x`, e.g. the uniform code prior of a VQ-VAE.
  """
  return jnp.full(jnp.shape(x)[:-1], -jnp.shape(x)[-1] * math.log(num_classes), jnp.float32)


def uniform_categorical_sample(
    key: jax.Array, shape: tuple[int, ...], num_classes: int
) -> jax.Array:
  """Integer classes of the given `shape` (`[..., D]`, int32), uniform over `num_classes`."""
  return jax.random.randint(key, shape, 0, num_classes, jnp.int32)


def kl_categorical_uniform(logits: jax.Array) -> jax.Array:
  """KL(softmax(logits) || Uniform(C)) `= D log C - H`: `[..., D, C] -> [...]`."""
  return kl_categoricals(logits, jnp.zeros_like(logits))
