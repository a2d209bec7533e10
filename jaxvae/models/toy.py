"""The seeds' 1-D toy: a discrete latent z in {0, 1} explains bimodal 1-D data.

p(z) = 1/2, p(x | z) = N(x; mu_z, sigma_z^2), q(z = 1 | x) = sigmoid(a x + b); every parameter is
learned jointly. With two values of z everything is enumerable:
`log p(x) = logsumexp_z [log p(z) + log p(x | z)]` exactly, and the ELBO
`sum_z q(z | x) [log p(x, z) - log q(z | x)]` has exact gradients (`train.objective='exact_elbo'`).
`log_weights` samples z ~ q with the keys, so the importance-sampling evaluator treats it like any
other model and must reproduce the exact log p(x).
"""

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from jaxvae import distributions as D
from jaxvae.errors import UserError
from jaxvae.models import interface
from jaxvae.models.interface import LogWeights
from jaxvae.models.registry import register


class ToyModel(nn.Module):
  """Data `x [B, 1]`; latent `z [K, B]` in {0, 1} (stored as float)."""

  data_shape: tuple[int, ...] = (1,)
  capabilities = frozenset({interface.EXACT_ELBO})

  def setup(self):
    self.q_slope = self.param("q_slope", nn.initializers.ones, ())
    self.q_bias = self.param("q_bias", nn.initializers.zeros, ())
    self.means = self.param("means", lambda key, shape: jnp.array([-1.0, 1.0]), (2,))
    self.raw_scales = self.param("raw_scales", nn.initializers.zeros, (2,))

  def scales(self) -> jax.Array:
    """`[2]` scales sigma_z, `softplus(raw) + 1e-3`."""
    return D.gaussian_scale_from_raw(self.raw_scales)

  def posterior_logit(self, x: jax.Array) -> jax.Array:
    """`a x + b`, the logit of q(z = 1 | x): `[B, 1] -> [B]`."""
    return self.q_slope * x[..., 0] + self.q_bias

  def log_joint(self, x: jax.Array) -> jax.Array:
    """`[2, B]`: log p(x, z) = log 1/2 + log N(x; mu_z, sigma_z^2) for z = 0, 1."""
    log_lik = D.gaussian_log_prob(x[None], self.means[:, None, None], self.scales()[:, None, None])
    return log_lik - math.log(2.0)

  def exact_log_px(self, x: jax.Array, labels: jax.Array | None = None) -> jax.Array:
    """`[B]` exact log p(x) = logsumexp_z log p(x, z)."""
    del labels
    return jax.nn.logsumexp(self.log_joint(x), axis=0)

  def exact_posterior(self, x: jax.Array) -> jax.Array:
    """`[2, B]` log q(z | x) for z = 0, 1."""
    logit = self.posterior_logit(x)
    return jnp.stack([jax.nn.log_sigmoid(-logit), jax.nn.log_sigmoid(logit)])

  def exact_elbo(self, x: jax.Array, labels: jax.Array | None = None) -> jax.Array:
    """`[B]` the ELBO by enumeration: `sum_z q(z | x) [log p(x, z) - log q(z | x)]`."""
    del labels
    log_q = self.exact_posterior(x)
    return jnp.sum(jnp.exp(log_q) * (self.log_joint(x) - log_q), axis=0)

  def log_weights(self, x: jax.Array, keys: jax.Array,
                  labels: jax.Array | None = None) -> LogWeights:
    """`[K, B]` terms for `z_kb ~ q(z | x_b)` drawn with `keys [K, B]` (no gradient through z)."""
    del labels
    logit = self.posterior_logit(x)  # [B]
    draw = jax.vmap(jax.vmap(lambda key, l: jax.random.bernoulli(key, jax.nn.sigmoid(l))),
                    in_axes=(0, None))
    z = draw(keys, logit).astype(jnp.int32)  # [K, B]
    log_q = jnp.where(z == 1, jax.nn.log_sigmoid(logit), jax.nn.log_sigmoid(-logit))
    mean, scale = self.means[z], self.scales()[z]  # [K, B]
    log_lik = D.gaussian_log_prob(x[None], mean[..., None], scale[..., None])
    return LogWeights(log_likelihood=log_lik, log_prior=jnp.full_like(log_q, -math.log(2.0)),
                      log_posterior=log_q)

  def sample(self, key: jax.Array, num: int, labels: jax.Array | None = None) -> jax.Array:
    """Means of p(x | z) for `num` draws z ~ p(z): `[num, 1]`."""
    del labels
    z = jax.random.bernoulli(key, 0.5, (num,)).astype(jnp.int32)
    return self.means[z][:, None]

  def reconstruct(self, x: jax.Array, labels: jax.Array | None = None) -> jax.Array:
    """Mean of p(x | z) at the most probable z under q(z | x): `[B, 1]`."""
    del labels
    return self.means[(self.posterior_logit(x) > 0).astype(jnp.int32)][:, None]

  def __call__(self, x: jax.Array, keys: jax.Array,
               labels: jax.Array | None = None) -> LogWeights:
    return self.log_weights(x, keys, labels)


def _validate(section, config) -> None:
  if config.data.source != "toy":
    raise UserError("model.kind='toy' models the 1-D toy data: set data.source='toy'")
  if config.train.objective != "exact_elbo":
    raise UserError("model.kind='toy' trains with its exact ELBO (its z gets no reparameterized "
                    "gradient): set train.objective='exact_elbo'")


@register("toy", ml_collections.ConfigDict, _validate)
def build_toy(section, context) -> ToyModel:
  return ToyModel(tuple(context.data_shape))
