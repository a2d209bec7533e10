"""A model written outside jaxvae: a small convolutional VAE with a learned Gaussian prior.

    PYTHONPATH=examples jaxvae train --config=examples/conv_vae_config.py --workdir=runs/conv
"""

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxvae import distributions as D
from jaxvae.models.interface import LATENT_VECTOR, LogWeights


class ConvVAE(nn.Module):
  data_shape: tuple[int, ...]  # [H, W, C], H and W even
  latent_dim: int = 4
  channels: int = 16
  capabilities = frozenset({LATENT_VECTOR})  # interpolation and traversal grids

  def setup(self):
    height, width, colours = self.data_shape
    self.down = nn.Conv(self.channels, (3, 3), strides=2)
    self.head = nn.Dense(2 * self.latent_dim)
    self.up = nn.Dense(height // 2 * width // 2 * self.channels)
    self.out = nn.ConvTranspose(colours, (3, 3), strides=(2, 2))
    self.prior_mean = self.param("prior_mean", nn.initializers.zeros, (self.latent_dim,))
    self.prior_log_var = self.param("prior_log_var", nn.initializers.zeros, (self.latent_dim,))

  def posterior(self, x):  # [B, H, W, C] -> mean, log_var [B, L]
    h = nn.relu(self.down(x)).reshape(x.shape[0], -1)
    return jnp.split(self.head(h), 2, axis=-1)

  def logits(self, z):  # [..., L] -> Bernoulli logits [..., H, W, C]
    height, width, _ = self.data_shape
    h = nn.relu(self.up(z)).reshape((-1, height // 2, width // 2, self.channels))
    return self.out(h).reshape(z.shape[:-1] + tuple(self.data_shape))

  def log_weights(self, x, keys, labels=None):  # keys [K, B] -> LogWeights of [K, B]
    mean, log_var = self.posterior(x)
    shape = keys.shape + mean.shape[-1:]  # [K, B, L]
    z = jax.vmap(jax.vmap(D.diag_gaussian_sample))(
        keys, jnp.broadcast_to(mean, shape), jnp.broadcast_to(log_var, shape))
    flat = lambda a: a.reshape(a.shape[:-3] + (-1,))  # noqa: E731
    return LogWeights(
        log_likelihood=D.bernoulli_log_prob(flat(x), flat(self.logits(z))),
        log_prior=D.diag_gaussian_log_prob(z, self.prior_mean, self.prior_log_var),
        log_posterior=D.diag_gaussian_log_prob(z, mean, log_var))

  def sample(self, key, num, labels=None):
    z = D.diag_gaussian_sample(key, jnp.broadcast_to(self.prior_mean, (num, self.latent_dim)),
                               jnp.broadcast_to(self.prior_log_var, (num, self.latent_dim)))
    return self.decode_latent(z)

  def latent_code(self, x, labels=None):
    return self.posterior(x)[0]

  def decode_latent(self, z, labels=None):
    return jax.nn.sigmoid(self.logits(z))

  def reconstruct(self, x, labels=None):
    return self.decode_latent(self.latent_code(x))
