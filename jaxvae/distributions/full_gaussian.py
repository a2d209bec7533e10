"""Full-covariance Gaussians parameterized by a Cholesky factor, as pure functions.

`N(mean, Sigma)` with `Sigma = L L^T`, where `scale_tril = L` is `[..., D, D]`, lower triangular with
a positive diagonal (only the lower triangle is read). `mean` is `[..., D]`; leading axes broadcast.
Log-probabilities, entropies and KLs reduce the event axis `D` and return `[...]`.
"""

import math

import jax
import jax.numpy as jnp

_LOG_2PI = math.log(2.0 * math.pi)


def _diag(scale_tril: jax.Array) -> jax.Array:
  return jnp.diagonal(scale_tril, axis1=-2, axis2=-1)


def _solve_tril(scale_tril: jax.Array, y: jax.Array) -> jax.Array:
  """`L^{-1} y` for `L [..., D, D]`, `y [..., D, N]`, broadcasting the batch axes."""
  batch = jnp.broadcast_shapes(scale_tril.shape[:-2], y.shape[:-2])
  scale_tril = jnp.broadcast_to(scale_tril, batch + scale_tril.shape[-2:])
  y = jnp.broadcast_to(y, batch + y.shape[-2:])
  return jax.lax.linalg.triangular_solve(scale_tril, y, left_side=True, lower=True)


def scale_tril_from_raw(raw: jax.Array, min_scale: float = 1e-3) -> jax.Array:
  """A valid Cholesky factor from an unconstrained `[..., D, D]` array.

  `L = tril(raw, -1) + diag(softplus(diag(raw)) + min_scale)`: the strict lower triangle is free and
  the diagonal is positive with a floor, so `Sigma = L L^T` is positive definite.
  """
  diag = jax.nn.softplus(_diag(raw)) + min_scale
  return jnp.tril(raw, -1) + diag[..., :, None] * jnp.eye(raw.shape[-1], dtype=raw.dtype)


def full_gaussian_log_prob(x: jax.Array, mean: jax.Array, scale_tril: jax.Array) -> jax.Array:
  """log N(x; mean, L L^T): `x, mean [..., D]`, `scale_tril [..., D, D]` -> `[...]`.

  With `u = L^{-1} (x - mean)`: `-0.5 * (D log(2 pi) + |u|^2) - sum_d log L_dd`.
  """
  scale_tril = jnp.tril(scale_tril)
  u = _solve_tril(scale_tril, (x - mean)[..., None])[..., 0]
  return (-0.5 * (x.shape[-1] * _LOG_2PI + jnp.sum(jnp.square(u), axis=-1))
          - jnp.sum(jnp.log(_diag(scale_tril)), axis=-1))


def full_gaussian_sample(key: jax.Array, mean: jax.Array, scale_tril: jax.Array) -> jax.Array:
  """Reparameterized draw `mean + L eps`, `eps ~ N(0, I_D)`: `[..., D]`."""
  shape = jnp.broadcast_shapes(mean.shape, scale_tril.shape[:-1])
  eps = jax.random.normal(key, shape, mean.dtype)
  return mean + jnp.einsum("...ij,...j->...i", jnp.tril(scale_tril), eps,
                           precision=jax.lax.Precision.HIGHEST)


def full_gaussian_entropy(scale_tril: jax.Array) -> jax.Array:
  """Differential entropy `0.5 * D (1 + log(2 pi)) + sum_d log L_dd`: `[..., D, D] -> [...]`."""
  d = scale_tril.shape[-1]
  return 0.5 * d * (1.0 + _LOG_2PI) + jnp.sum(jnp.log(_diag(scale_tril)), axis=-1)


def kl_full_gaussians(
    mean_q: jax.Array, scale_tril_q: jax.Array, mean_p: jax.Array, scale_tril_p: jax.Array
) -> jax.Array:
  """KL(q || p) between full-covariance Gaussians in closed form: `[...]`.

  `0.5 * [tr(Sigma_p^{-1} Sigma_q) + (mu_p - mu_q)^T Sigma_p^{-1} (mu_p - mu_q) - D
  + log det Sigma_p - log det Sigma_q]`, with `tr(Sigma_p^{-1} Sigma_q) = |L_p^{-1} L_q|_F^2`,
  the Mahalanobis term `|L_p^{-1} (mu_p - mu_q)|^2` and `log det Sigma = 2 sum_d log L_dd`.
  """
  scale_tril_q, scale_tril_p = jnp.tril(scale_tril_q), jnp.tril(scale_tril_p)
  d = mean_q.shape[-1]
  m = _solve_tril(scale_tril_p, scale_tril_q)
  u = _solve_tril(scale_tril_p, (mean_p - mean_q)[..., None])[..., 0]
  log_det_ratio = 2.0 * jnp.sum(
      jnp.log(_diag(scale_tril_p)) - jnp.log(_diag(scale_tril_q)), axis=-1)
  trace = jnp.sum(jnp.square(m), axis=(-2, -1))
  return 0.5 * (trace + jnp.sum(jnp.square(u), axis=-1) - d + log_det_ratio)


def kl_full_gaussian_standard_normal(mean: jax.Array, scale_tril: jax.Array) -> jax.Array:
  """KL(N(mean, L L^T) || N(0, I)) in closed form: `[..., D], [..., D, D] -> [...]`.

  `0.5 * [|L|_F^2 + |mean|^2 - D] - sum_d log L_dd`.
  """
  scale_tril = jnp.tril(scale_tril)
  d = mean.shape[-1]
  return (0.5 * (jnp.sum(jnp.square(scale_tril), axis=(-2, -1))
                 + jnp.sum(jnp.square(mean), axis=-1) - d)
          - jnp.sum(jnp.log(_diag(scale_tril)), axis=-1))
