"""Discretized logistic mixture likelihood for 8-bit and n-bit images (Salimans et al., 2017).

Layout: pixels `x [..., D]` are floats in `[0, 1]` as `jaxvae.data` delivers them (the model
flattens `[H, W, C]` to `D = H * W * C`), sitting on the grid `k / (2^bits - 1)`,
`k = 0, ..., 2^bits - 1`. Each dimension has its own mixture of `M` logistics, with parameters
`logits, means, log_scales` of shape `[..., D, M]`; `means` live in the same `[0, 1]` pixel space.
Dimensions are independent given the parameters (PixelCNN++'s autoregressive coupling of the
colour channels is not used). The event axis `D` is reduced; leading axes broadcast.

The mass of level `k`, with bin half-width `h = 1 / (2 (2^bits - 1))`, centre `c = k / (2^bits - 1)`
and logistic CDF `sigmoid((y - mean) / s)`, is `CDF(c + h) - CDF(c - h)`, where the lowest level takes
all mass below (`CDF(c + h)`) and the highest all mass above (`1 - CDF(c - h)`), so the masses of
all levels sum to exactly 1. With `a = (c + h - mean) / s` and `b = (c - h - mean) / s` the interior
mass is computed without cancellation from the identity
`sigmoid(a) - sigmoid(b) = sigmoid(a) sigmoid(-b) (1 - exp(-(a - b)))`.
"""

import jax
import jax.numpy as jnp

_MIN_LOG_SCALE = -7.0  # as in PixelCNN++: keeps every bin's mass from collapsing to a point


def _log1mexp(d: jax.Array) -> jax.Array:
  """`log(1 - exp(-d))` for `d > 0`, accurate for small and large `d` (Maechler, 2012)."""
  small = d < jnp.log(2.0)
  safe_small = jnp.where(small, d, 1.0)
  safe_large = jnp.where(small, 1.0, d)
  return jnp.where(small, jnp.log(-jnp.expm1(-safe_small)), jnp.log1p(-jnp.exp(-safe_large)))


def discretized_logistic_mixture_log_prob(
    x: jax.Array,
    logits: jax.Array,
    means: jax.Array,
    log_scales: jax.Array,
    num_bits: int = 8,
    min_log_scale: float = _MIN_LOG_SCALE,
) -> jax.Array:
  """log P(x) of the discretized logistic mixture, summed over pixels: `[...]`.

  Args:
    x: `[..., D]` pixels in `[0, 1]` on the grid `k / (2^num_bits - 1)` (rounded to it).
    logits, means, log_scales: `[..., D, M]`; `log_scales` are floored at `min_log_scale`.
    num_bits: bits per pixel, e.g. 8 for 256 levels, 5 for Glow's 5-bit CelebA.

  Returns:
    `sum_d logsumexp_m [log_softmax(logits)_dm + log P_m(x_d)]`, a log probability mass (nats).

  Example:
    >>> discretized_logistic_mixture_log_prob(images.reshape(b, -1), *jnp.split(out, 3, -1))
  """
  num_levels = 2**num_bits
  k = jnp.clip(jnp.round(x * (num_levels - 1)), 0, num_levels - 1)[..., None]  # [..., D, 1]
  half_width = 0.5 / (num_levels - 1)
  centre = k / (num_levels - 1)
  inv_scale = jnp.exp(-jnp.maximum(log_scales, min_log_scale))
  a = (centre + half_width - means) * inv_scale
  b = (centre - half_width - means) * inv_scale
  is_lowest, is_highest = k == 0, k == num_levels - 1
  log_mass = (jnp.where(is_highest, 0.0, jax.nn.log_sigmoid(a))
              + jnp.where(is_lowest, 0.0, jax.nn.log_sigmoid(-b))
              + jnp.where(is_lowest | is_highest, 0.0, _log1mexp(2.0 * half_width * inv_scale)))
  log_mix = jax.nn.log_softmax(logits, axis=-1)
  return jnp.sum(jax.nn.logsumexp(log_mix + log_mass, axis=-1), axis=-1)


def discretized_logistic_mixture_sample(
    key: jax.Array,
    logits: jax.Array,
    means: jax.Array,
    log_scales: jax.Array,
    num_bits: int = 8,
    min_log_scale: float = _MIN_LOG_SCALE,
) -> jax.Array:
  """An exact draw of pixels `[..., D]` in `[0, 1]` on the grid `k / (2^num_bits - 1)`.

  Picks a component per pixel from `softmax(logits)`, draws `y = mean + s log(u / (1 - u))`,
  `u ~ U(0, 1)`, and rounds `y` to the nearest level (clipping to the lowest and highest levels),
  which is exactly how the mass of each level is defined. Not differentiable.
  """
  key_component, key_noise = jax.random.split(key)
  num_levels = 2**num_bits
  component = jax.random.categorical(key_component, logits, axis=-1)
  one_hot = jax.nn.one_hot(component, logits.shape[-1], dtype=means.dtype)
  mean = jnp.sum(one_hot * means, axis=-1)
  log_scale = jnp.sum(one_hot * jnp.maximum(log_scales, min_log_scale), axis=-1)
  u = jax.random.uniform(key_noise, mean.shape, mean.dtype, minval=1e-6, maxval=1.0 - 1e-6)
  y = mean + jnp.exp(log_scale) * (jnp.log(u) - jnp.log1p(-u))
  k = jnp.clip(jnp.round(y * (num_levels - 1)), 0, num_levels - 1)
  return jax.lax.stop_gradient(k / (num_levels - 1))
