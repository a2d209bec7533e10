"""A hierarchical VAE with `L >= 2` stochastic layers, top-down (Ladder VAE) or bottom-up inference.

Generative model, layers ordered bottom (next to x, layer 1) to top (layer L):
`p(z_L) = N(0, I)`, `p(z_l | z_{l+1}) = N(mu_l(z_{l+1}), diag sigma_l^2(z_{l+1}))`, `p(x | z_1)`.

`inference='top_down'`, the Ladder VAE (Sønderby et al., 2016), shares the top-down path with the
generative model. A deterministic bottom-up pass `d_1 = enc(x)`, `d_l = up_l(d_{l-1})` gives
per-layer estimates `(mu_hat_l, sigma_hat_l^2)`; then, from the top, `q(z_L | x) =
N(mu_hat_L, sigma_hat_L^2)` and for `l < L` q is the precision-weighted combination of the
bottom-up estimate with the top-down prior at the sampled `z_{l+1}`:
`sigma_q^-2 = sigma_hat^-2 + sigma_p^-2`, `mu_q = sigma_q^2 (mu_hat sigma_hat^-2 + mu_p sigma_p^-2)`.

`inference='bottom_up'`, the two-layer models of Burda et al. (2016), samples upwards:
`q(z_1 | x) = N(head_1(enc(x)))`, `q(z_{l+1} | z_l) = N(head_{l+1}(up_l(z_l)))`.

`log w = log p(x | z_1) + sum_l [log p(z_l | z_{l+1}) - log q(z_l | ...)]`, and `layer_kl[l - 1]`
holds layer l's term `log q - log p` (a one-sample KL estimate). With `hidden_sizes=(200, 200)`,
`upper_hidden_sizes=(100, 100)`, `latent_dims=(100, 50)` and bottom-up inference the networks are
Burda et al.'s x-200-200-z1-100-100-z2.
"""

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxvae import distributions as D
from jaxvae.models.interface import LogWeights
from jaxvae.models.likelihoods import make_likelihood
from jaxvae.models.networks import MLP, MLPEncoder, make_encoder_decoder


def precision_weighted(mean_a, log_var_a, mean_b, log_var_b):
  """The product of two Gaussians' densities, normalized: `(mean, log_var)` (LVAE, Eq. 17-19)."""
  log_var = -jnp.logaddexp(-log_var_a, -log_var_b)
  mean = (mean_a * jnp.exp(log_var - log_var_a) + mean_b * jnp.exp(log_var - log_var_b))
  return mean, log_var


_sample = jax.vmap(jax.vmap(D.diag_gaussian_sample))  # keys [K, B], means [K, B, L] -> [K, B, L]


class HierarchicalVAE(nn.Module):
  """Images `[B, *data_shape]`; latents `z_l [K, B, latent_dims[l - 1]]`. See the module docstring."""

  data_shape: tuple[int, ...]
  latent_dims: tuple[int, ...]
  hidden_sizes: tuple[int, ...] = (256, 256)
  upper_hidden_sizes: tuple[int, ...] = (128, 128)
  activation: str = "tanh"
  network: str = "mlp"
  channels: tuple[int, ...] = (32, 64)
  blocks_per_stage: int = 1
  likelihood: str = "bernoulli"
  likelihood_scale: float = 0.0
  num_mixtures: int = 5
  num_bits: int = 8
  output_bias: float | tuple[float, ...] = 0.0
  inference: str = "top_down"  # or 'bottom_up'

  def setup(self):
    num_dims = math.prod(self.data_shape)
    self.likelihood_head = make_likelihood(self.likelihood, num_dims, self.likelihood_scale,
                                           self.num_mixtures, self.num_bits)
    self.encoder, self.decoder = make_encoder_decoder(self, self.likelihood_head.params_per_dim)
    num_layers = len(self.latent_dims)
    self.up = [MLPEncoder(self.upper_hidden_sizes, self.activation)
               for _ in range(num_layers - 1)]
    self.bottom_up_heads = [nn.Dense(2 * size) for size in self.latent_dims]
    self.top_down = [MLP(self.upper_hidden_sizes, 2 * self.latent_dims[layer], self.activation)
                     for layer in range(num_layers - 1)]

  def encode(self, x: jax.Array, labels: jax.Array | None = None) -> tuple[jax.Array, ...]:
    """Per-layer Gaussians `(mean_1, log_var_1, ..., mean_L, log_var_L)`, `[B, L_l]`: the
    bottom-up estimates (top-down inference), or q's layers along the path of their means
    (bottom-up inference)."""
    del labels
    d = self.encoder(x, None)
    out = []
    for layer, head in enumerate(self.bottom_up_heads):
      if layer:
        d = self.up[layer - 1](out[-2] if self.inference == "bottom_up" else d, None)
      out.extend(jnp.split(head(d), 2, axis=-1))
    return tuple(out)

  def prior_parameters(self, layer: int, z_above: jax.Array) -> tuple[jax.Array, jax.Array]:
    """`(mean, log_var)` of p(z_layer | z_{layer+1}) (0-based `layer < L - 1`)."""
    return tuple(jnp.split(self.top_down[layer](z_above), 2, axis=-1))

  def decode(self, z: jax.Array, labels: jax.Array | None = None) -> jax.Array:
    """Bottom latent `z_1 [..., B, L_1]` -> likelihood parameters `[..., B, D, P]`."""
    del labels
    return self.decoder(z, None)

  def log_weights(self, x: jax.Array, keys: jax.Array,
                  labels: jax.Array | None = None) -> LogWeights:
    """`[K, B]` terms of log w for a draw of every layer with `keys [K, B]`; `layer_kl` is
    `[L, K, B]`, bottom layer first."""
    del labels
    layer_keys = jax.vmap(jax.vmap(lambda k: jax.random.split(k, len(self.latent_dims))))(keys)
    infer = self._top_down if self.inference == "top_down" else self._bottom_up
    z_bottom, log_p, log_q = infer(x, layer_keys)  # [K, B, L_1], [L, K, B], [L, K, B]
    log_likelihood = self.likelihood_head.log_prob(x.reshape(x.shape[0], -1),
                                                   self.decode(z_bottom))
    return LogWeights(log_likelihood=log_likelihood, log_prior=log_p.sum(0),
                      log_posterior=log_q.sum(0), layer_kl=log_q - log_p)

  def _top_down(self, x, layer_keys):
    """Draws from the top with precision weighting: `(z_1, log p [L, K, B], log q [L, K, B])`."""
    bottom_up = self.encode(x)
    num_layers = len(self.latent_dims)
    log_p, log_q, z = [None] * num_layers, [None] * num_layers, None
    for layer in reversed(range(num_layers)):
      mean_hat, log_var_hat = bottom_up[2 * layer], bottom_up[2 * layer + 1]
      shape = layer_keys.shape[:2] + mean_hat.shape[-1:]
      if layer == num_layers - 1:
        mean_q, log_var_q = jnp.broadcast_to(mean_hat, shape), jnp.broadcast_to(log_var_hat, shape)
        prior = None
      else:
        prior = self.prior_parameters(layer, z)
        mean_q, log_var_q = precision_weighted(mean_hat, log_var_hat, *prior)
      z = _sample(layer_keys[..., layer], mean_q, log_var_q)
      log_q[layer] = D.diag_gaussian_log_prob(z, mean_q, log_var_q)
      log_p[layer] = (D.standard_normal_log_prob(z) if prior is None
                      else D.diag_gaussian_log_prob(z, *prior))
    return z, jnp.stack(log_p), jnp.stack(log_q)

  def _bottom_up(self, x, layer_keys):
    """Draws from the bottom, `z_{l+1} ~ q(z_{l+1} | z_l)`: `(z_1, log p, log q)` as `_top_down`."""
    d = self.encoder(x, None)  # [B, H]
    zs, log_q = [], []
    for layer, head in enumerate(self.bottom_up_heads):
      if layer:
        below = zs[-1]  # [K, B, L_{l-1}]
        d = self.up[layer - 1](below.reshape(-1, below.shape[-1]), None)
        d = d.reshape(below.shape[:-1] + d.shape[-1:])
      mean, log_var = jnp.split(head(d), 2, axis=-1)
      shape = layer_keys.shape[:2] + mean.shape[-1:]
      mean, log_var = jnp.broadcast_to(mean, shape), jnp.broadcast_to(log_var, shape)
      zs.append(_sample(layer_keys[..., layer], mean, log_var))
      log_q.append(D.diag_gaussian_log_prob(zs[-1], mean, log_var))
    log_p = [D.diag_gaussian_log_prob(zs[layer], *self.prior_parameters(layer, zs[layer + 1]))
             for layer in range(len(zs) - 1)] + [D.standard_normal_log_prob(zs[-1])]
    return zs[0], jnp.stack(log_p), jnp.stack(log_q)

  def sample(self, key: jax.Array, num: int, labels: jax.Array | None = None) -> jax.Array:
    """Means of p(x | z_1) for ancestral draws `z_L ~ N(0, I)`, `z_l ~ p(z_l | z_{l+1})`."""
    del labels
    keys = jax.random.split(key, len(self.latent_dims))
    z = jax.random.normal(keys[-1], (num, self.latent_dims[-1]))
    for layer in reversed(range(len(self.latent_dims) - 1)):
      z = D.diag_gaussian_sample(keys[layer], *self.prior_parameters(layer, z))
    return self.likelihood_head.mean(self.decode(z)).reshape((num,) + tuple(self.data_shape))

  def reconstruct(self, x: jax.Array, labels: jax.Array | None = None) -> jax.Array:
    """Mean of p(x | z_1) at the posterior mean of z_1 (along the top-down path of means, for
    top-down inference)."""
    del labels
    layers = self.encode(x)
    z = layers[0]
    if self.inference == "top_down":
      z = layers[-2]
      for layer in reversed(range(len(self.latent_dims) - 1)):
        z, _ = precision_weighted(layers[2 * layer], layers[2 * layer + 1],
                                  *self.prior_parameters(layer, z))
    return self.likelihood_head.mean(self.decode(z)).reshape(x.shape)

  def __call__(self, x: jax.Array, keys: jax.Array,
               labels: jax.Array | None = None) -> LogWeights:
    return self.log_weights(x, keys, labels)
