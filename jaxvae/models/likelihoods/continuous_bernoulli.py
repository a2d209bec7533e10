"""The continuous Bernoulli likelihood (Loaiza-Ganem & Cunningham, 2019): the correctly normalized
density on [0, 1] with a Bernoulli's shape, for pixels in [0, 1] that are not binary.

    p(x | lambda) = C(lambda) lambda^x (1 - lambda)^(1 - x),   x in [0, 1]
    C(lambda) = 2 artanh(1 - 2 lambda) / (1 - 2 lambda)  (2 at lambda = 1/2)

With the logit eta = log(lambda / (1 - lambda)), C = eta / tanh(eta / 2), an even function of eta
whose two factors both tend to 0 at eta = 0: there its Taylor series is used,
`log C = log 2 + eta^2 / 12 - 7 eta^4 / 1440 + O(eta^6)`, and the mean
`E[x] = sigmoid(eta) / tanh(eta / 2) - 1 / eta = 1/2 + eta / 12 - eta^3 / 720 + O(eta^5)`.
"""

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxvae.errors import UserError
from jaxvae.models.likelihoods import register_likelihood

_SERIES = 0.1  # |eta| below which the Taylor series are used (their next terms are < 1e-9)


def log_normalizer(eta: jax.Array) -> jax.Array:
  """`log C(sigmoid(eta))`, elementwise, stable for every logit `eta`."""
  a = jnp.abs(eta)
  safe = jnp.maximum(a, _SERIES)
  direct = jnp.log(safe) - jnp.log(-jnp.expm1(-safe)) + jnp.log1p(jnp.exp(-safe))
  series = math.log(2.0) + a**2 / 12 - 7 * a**4 / 1440
  return jnp.where(a < _SERIES, series, direct)


def log_prob(x: jax.Array, eta: jax.Array) -> jax.Array:
  """`log p(x | sigmoid(eta))` summed over the last axis: `x [B, D]`, `eta [..., B, D] -> [..., B]`."""
  terms = x * jax.nn.log_sigmoid(eta) + (1 - x) * jax.nn.log_sigmoid(-eta) + log_normalizer(eta)
  return jnp.sum(terms, axis=-1)


def mean(eta: jax.Array) -> jax.Array:
  """`E[x]` under the continuous Bernoulli of logit `eta`, elementwise."""
  safe = jnp.where(jnp.abs(eta) < _SERIES, _SERIES, eta)
  direct = jax.nn.sigmoid(safe) / jnp.tanh(safe / 2) - 1 / safe
  series = 0.5 + eta / 12 - eta**3 / 720
  return jnp.where(jnp.abs(eta) < _SERIES, series, direct)


class ContinuousBernoulliLikelihood(nn.Module):
  """p(x | z) = prod_d CB(x_d; sigmoid(logit_d)), one logit per pixel."""

  num_dims: int
  params_per_dim: int = 1

  def log_prob(self, x, out):
    return log_prob(x, out[..., 0])

  def mean(self, out):
    return mean(out[..., 0])


def _unit_pixels(config) -> None:
  if config.data.scale != "unit":
    raise UserError("model.likelihood='continuous_bernoulli' models pixels in [0, 1]: set "
                    "data.scale='unit'")


@register_likelihood("continuous_bernoulli", validate=_unit_pixels)
def _continuous_bernoulli(section, num_dims):
  return ContinuousBernoulliLikelihood(num_dims)
