"""Gaussian distributions with diagonal covariance, as pure functions.

Conventions for every function in `jaxvae.distributions`: the last axis is the event axis and is
reduced by log-probabilities, entropies and KLs; all leading axes are batch axes and broadcast.

Two parameterizations, one per use:

- latent posteriors and priors take a log-variance `log_var` (`diag_gaussian_*`, `kl_diag_*`);
- likelihoods take a scale `scale` (`gaussian_*`): a fixed float, or a learned per-dimension scale
  made positive with a floor by `gaussian_scale_from_raw`.
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


def diag_gaussian_entropy(log_var: jax.Array) -> jax.Array:
  """Differential entropy of N(mean, diag(exp(log_var))): `[..., D] -> [...]`.

  `H = 0.5 * sum_d [1 + log(2 pi) + log_var_d]` (independent of the mean).
  """
  return 0.5 * jnp.sum(1.0 + _LOG_2PI + log_var, axis=-1)


def standard_normal_log_prob(x: jax.Array) -> jax.Array:
  """log N(x; 0, I) summed over the last axis: `[..., D] -> [...]`."""
  return -0.5 * jnp.sum(_LOG_2PI + jnp.square(x), axis=-1)


def standard_normal_sample(key: jax.Array, shape: tuple[int, ...], dtype=jnp.float32) -> jax.Array:
  """A draw from N(0, I) of the given `shape` (`[..., D]`)."""
  return jax.random.normal(key, shape, dtype)


def kl_diag_gaussian_standard_normal(mean: jax.Array, log_var: jax.Array) -> jax.Array:
  """KL(N(mean, diag(exp(log_var))) || N(0, I)) in closed form: `[..., D] -> [...]`.

  `0.5 * sum_d [exp(log_var_d) + mean_d^2 - 1 - log_var_d]` (Kingma & Welling, 2014, App. B),
  computed as `expm1(log_var) - log_var` so that it is accurate near `log_var = 0`.
  """
  return 0.5 * jnp.sum(jnp.expm1(log_var) - log_var + jnp.square(mean), axis=-1)


def kl_diag_gaussians(
    mean_q: jax.Array, log_var_q: jax.Array, mean_p: jax.Array, log_var_p: jax.Array
) -> jax.Array:
  """KL(q || p) between diagonal Gaussians in closed form: `[..., D] -> [...]`.

  With `r_d = log_var_q_d - log_var_p_d`:
  `KL = 0.5 * sum_d [exp(r_d) - 1 - r_d + (mean_q_d - mean_p_d)^2 / exp(log_var_p_d)]`.
  It is zero iff q = p; `exp(r) - 1 - r` is computed with `expm1`.

  Example:
    >>> kl_diag_gaussians(jnp.ones(3), jnp.zeros(3), jnp.zeros(3), jnp.zeros(3))  # 1.5
  """
  r = log_var_q - log_var_p
  return 0.5 * jnp.sum(
      jnp.expm1(r) - r + jnp.square(mean_q - mean_p) * jnp.exp(-log_var_p), axis=-1
  )


def gaussian_log_prob(x: jax.Array, mean: jax.Array, scale: jax.Array | float) -> jax.Array:
  """Gaussian likelihood log N(x; mean, scale^2 I) summed over the last axis: `[..., D] -> [...]`.

  `-0.5 * sum_d [log(2 pi) + 2 log scale_d + ((x_d - mean_d) / scale_d)^2]`. `scale` is a fixed
  float (broadcast over every dimension) or a learned `[..., D]` array, e.g. from
  `gaussian_scale_from_raw`.

  Example:
    >>> gaussian_log_prob(x, decoder_mean, 0.1)            # fixed scale
    >>> gaussian_log_prob(x, mean, gaussian_scale_from_raw(raw_scale))  # learned, floored
  """
  scale = jnp.asarray(scale, jnp.result_type(mean))
  z = (x - mean) / scale
  log_scale = jnp.broadcast_to(jnp.log(scale), z.shape)
  return -0.5 * jnp.sum(_LOG_2PI + 2.0 * log_scale + jnp.square(z), axis=-1)


def gaussian_sample(key: jax.Array, mean: jax.Array, scale: jax.Array | float) -> jax.Array:
  """Reparameterized draw `mean + scale * eps`, `eps ~ N(0, I)`; shape of `mean` and `scale`."""
  shape = jnp.broadcast_shapes(jnp.shape(mean), jnp.shape(scale))
  return mean + scale * jax.random.normal(key, shape, jnp.result_type(mean))


def gaussian_scale_from_raw(raw: jax.Array, min_scale: float = 1e-3) -> jax.Array:
  """A positive scale with a floor from an unconstrained network output: `softplus(raw) + min_scale`.

  The floor keeps `log scale >= log(min_scale)`, so the likelihood cannot collapse onto a pixel
  and diverge (a well-known failure of learned-variance Gaussian decoders).
  """
  return jax.nn.softplus(raw) + min_scale
