"""The one interface every latent-variable model answers (see ARCHITECTURE.md)."""

from typing import NamedTuple

import jax

# Collections a model may write in training (the trainer applies it with them mutable):
PARAM_UPDATES = "param_updates"  # new values of parameters it updates itself, not by gradient
METRICS = "metrics"  # scalars the trainer logs with its own metrics


class LogWeights(NamedTuple):
  """The terms of `log w = log p(x | z) + log p(z) - log q(z | x)` for `z_kb ~ q(z | x_b)`.

  The first three fields are `[K, B]`: sample k of example b; their sum over layers for
  hierarchical models, which also fill `layer_kl`. Bounds, estimators and metrics are functions of
  these arrays (`jaxvae.losses`), so they never special-case a model.
  """

  log_likelihood: jax.Array  # log p(x_b | z_kb)
  log_prior: jax.Array  # log p(z_kb)
  log_posterior: jax.Array  # log q(z_kb | x_b)
  layer_kl: jax.Array | None = None  # [L, K, B] per-layer KL estimates of hierarchical models
  penalty: jax.Array | None = None  # [B] terms the training loss adds, outside the bound (VQ-VAE)

  @property
  def values(self) -> jax.Array:
    """`[K, B]` log importance weights `log p(x, z) - log q(z | x)`."""
    return self.log_likelihood + self.log_prior - self.log_posterior

  @property
  def kl(self) -> jax.Array:
    """`[K, B]` single-sample estimates `log q(z | x) - log p(z)` of KL(q(z | x) || p(z))."""
    return self.log_posterior - self.log_prior
