"""The variational autoencoder (Kingma & Welling, 2014) with a diagonal Gaussian posterior."""

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxvae import distributions as D
from jaxvae.models.interface import LogWeights
from jaxvae.models.networks import MLP


class VAE(nn.Module):
  """q(z|x) = N(mu(x), diag sigma^2(x)), p(z) = N(0, I), p(x|z) = Bernoulli(sigmoid(f(z))).

  Encoder and decoder are MLPs on the flattened image. Images are `[B, *data_shape]` in [0, 1].
  """

  data_shape: tuple[int, ...]
  latent_dim: int
  hidden_sizes: tuple[int, ...]

  def setup(self):
    self.encoder = MLP(self.hidden_sizes, 2 * self.latent_dim)
    self.decoder = MLP(tuple(reversed(self.hidden_sizes)), math.prod(self.data_shape))

  def encode(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """`[B, *data_shape]` -> posterior `(mean, log_var)`, each `[B, L]`."""
    mean, log_var = jnp.split(self.encoder(x.reshape(x.shape[0], -1)), 2, axis=-1)
    return mean, log_var

  def decode(self, z: jax.Array) -> jax.Array:
    """`[..., L]` -> likelihood logits `[..., D]` on the flattened image."""
    return self.decoder(z)

  def log_weights(self, x: jax.Array, keys: jax.Array,
                  labels: jax.Array | None = None) -> LogWeights:
    """Terms of the log importance weights for `z_kb ~ q(z | x_b)` drawn with `keys[k, b]`.

    Args:
      x: `[B, *data_shape]`.
      keys: `[K, B]` random keys, one per (sample, example), so the draws do not depend on how
        samples or examples are batched.
      labels: `[B]` int class labels; conditional models use them, this one ignores them.

    Returns:
      `LogWeights` with `[K, B]` fields.
    """
    del labels
    mean, log_var = self.encode(x)
    draw = jax.vmap(jax.vmap(D.diag_gaussian_sample))  # over K, then B
    z = draw(keys, jnp.broadcast_to(mean, keys.shape + mean.shape[-1:]),
             jnp.broadcast_to(log_var, keys.shape + log_var.shape[-1:]))  # [K, B, L]
    logits = self.decode(z)  # [K, B, D]
    return LogWeights(
        log_likelihood=D.bernoulli_log_prob(x.reshape(x.shape[0], -1), logits),
        log_prior=D.standard_normal_log_prob(z),
        log_posterior=D.diag_gaussian_log_prob(z, mean, log_var),
    )

  def sample(self, key: jax.Array, num: int) -> jax.Array:
    """Means of p(x | z) for `num` draws z ~ p(z): `[num, *data_shape]` in [0, 1]."""
    z = jax.random.normal(key, (num, self.latent_dim))
    return D.bernoulli_mean(self.decode(z)).reshape((num,) + self.data_shape)

  def reconstruct(self, x: jax.Array) -> jax.Array:
    """Mean of p(x | z) at the posterior mean z = mu(x): `[B, *data_shape]` in [0, 1]."""
    mean, _ = self.encode(x)
    return D.bernoulli_mean(self.decode(mean)).reshape(x.shape)

  def __call__(self, x: jax.Array, keys: jax.Array,
               labels: jax.Array | None = None) -> LogWeights:
    return self.log_weights(x, keys, labels)
