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
from jaxvae.errors import UserError
from jaxvae.models import interface
from jaxvae.models.interface import METRICS, LogWeights
from jaxvae.models.likelihoods import likelihood_defaults, make_likelihood
from jaxvae.models.networks import MLP, MLPEncoder, make_encoder_decoder, network_defaults
from jaxvae.models.posteriors import DiagGaussian
from jaxvae.models.registry import register
from jaxvae.models.vae import output_bias, validate_network


def precision_weighted(a: DiagGaussian, b: DiagGaussian) -> DiagGaussian:
  """The product of two Gaussians' densities, normalized (LVAE, Eq. 17-19)."""
  log_var = -jnp.logaddexp(-a.log_var, -b.log_var)
  mean = a.mean * jnp.exp(log_var - a.log_var) + b.mean * jnp.exp(log_var - b.log_var)
  return DiagGaussian(mean, log_var)


def _gaussian(out: jax.Array) -> DiagGaussian:
  return DiagGaussian(*jnp.split(out, 2, axis=-1))


_sample = jax.vmap(jax.vmap(D.diag_gaussian_sample))  # keys [K, B], means [K, B, L] -> [K, B, L]


class HierarchicalVAE(nn.Module):
  """Images `[B, *data_shape]`; latents `z_l [K, B, latent_dims[l - 1]]`. See the module docstring.

  `encoder`, `decoder` and `likelihood_head` are components as in `VAE` (the decoder maps the
  bottom latent); the nets between layers are MLPs of `upper_hidden_sizes`.
  """

  data_shape: tuple[int, ...]
  latent_dims: tuple[int, ...]
  encoder: nn.Module
  decoder: nn.Module
  likelihood_head: nn.Module
  upper_hidden_sizes: tuple[int, ...] = (128, 128)
  activation: str = "tanh"
  inference: str = "top_down"  # or 'bottom_up'

  @property
  def capabilities(self) -> frozenset:
    c = {interface.LAYER_KL, interface.REPARAMETERIZED}
    if self.inference == "bottom_up":  # Top-down inference shares the top-down nets with p.
      c.add(interface.SEPARATE_INFERENCE)
    return frozenset(c)

  @property
  def inference_modules(self) -> tuple[str, ...]:
    """q's parameters with bottom-up inference: the encoder, the nets up, the heads."""
    layers = range(len(self.latent_dims))
    return ("encoder", *(f"up_{l}" for l in layers[:-1]),
            *(f"bottom_up_heads_{l}" for l in layers))

  def setup(self):
    num_layers = len(self.latent_dims)
    self.up = [MLPEncoder(self.upper_hidden_sizes, self.activation)
               for _ in range(num_layers - 1)]
    self.bottom_up_heads = [nn.Dense(2 * size) for size in self.latent_dims]
    self.top_down = [MLP(self.upper_hidden_sizes, 2 * self.latent_dims[layer], self.activation)
                     for layer in range(num_layers - 1)]

  def encode(self, x: jax.Array) -> tuple[DiagGaussian, ...]:
    """One Gaussian per layer, bottom first, `[B, L_l]` leaves: the bottom-up estimates
    (top-down inference), or q's layers along the path of their means (bottom-up inference)."""
    d = self.encoder(x, None)
    out = []
    for layer, head in enumerate(self.bottom_up_heads):
      if layer:
        d = self.up[layer - 1](out[-1].mean if self.inference == "bottom_up" else d, None)
      out.append(_gaussian(head(d)))
    return tuple(out)

  def prior_parameters(self, layer: int, z_above: jax.Array) -> DiagGaussian:
    """p(z_layer | z_{layer+1}) (0-based `layer < L - 1`)."""
    return _gaussian(self.top_down[layer](z_above))

  def layer_log_weights(self, x: jax.Array, keys: jax.Array
                        ) -> tuple[LogWeights, jax.Array, tuple[jax.Array, ...]]:
    """`(LogWeights [K, B], layer_kl [L, K, B], z)` for a draw of every layer with `keys [K, B]`;
    `layer_kl[l]` is layer l's term `log q - log p`, `z[l]` its draws `[K, B, L_l]` (bottom
    layer first)."""
    layer_keys = jax.vmap(jax.vmap(lambda k: jax.random.split(k, len(self.latent_dims))))(keys)
    infer = self._top_down if self.inference == "top_down" else self._bottom_up
    zs, log_p, log_q = infer(x, layer_keys)  # L x [K, B, L_l], [L, K, B], [L, K, B]
    log_likelihood = self.likelihood_head.log_prob(x.reshape(x.shape[0], -1),
                                                   self.decoder(zs[0], None))
    return (LogWeights(log_likelihood=log_likelihood, log_prior=log_p.sum(0),
                       log_posterior=log_q.sum(0)), log_q - log_p, zs)

  def log_weights(self, x: jax.Array, keys: jax.Array,
                  labels: jax.Array | None = None) -> LogWeights:
    """`[K, B]` terms of log w for a draw of every layer with `keys [K, B]`; in training each
    layer's mean KL goes to the metrics as `kl_layer_<l>` (bottom layer 0)."""
    return self.log_weights_and_latents(x, keys, labels)[0]

  def log_weights_and_latents(self, x: jax.Array, keys: jax.Array,
                              labels: jax.Array | None = None
                              ) -> tuple[LogWeights, tuple[jax.Array, ...]]:
    """`(log_weights(x, keys), z)`, z one `[K, B, L_l]` array per layer, bottom first."""
    log_weights, layer_kl, zs = self.layer_log_weights(x, keys)
    if self.is_mutable_collection(METRICS):
      for layer, kl in enumerate(jnp.mean(layer_kl, axis=(1, 2))):
        self.put_variable(METRICS, f"kl_layer_{layer}", kl)
    return log_weights, zs

  def posterior_log_prob(self, x: jax.Array, zs: tuple[jax.Array, ...],
                         labels: jax.Array | None = None) -> jax.Array:
    """`[K, B]` log q(z | x) at draws `zs` (one `[K, B, L_l]` per layer, bottom first): q's
    layers from their inputs, the bottom-up pass of x and the draws of the layer above (top-down)
    or below (bottom-up)."""
    shape = lambda q, z: jax.tree.map(lambda a: jnp.broadcast_to(a, z.shape), q)  # noqa: E731
    log_q = 0.0
    if self.inference == "top_down":
      bottom_up = self.encode(x)
      for layer, z in enumerate(zs):
        q = bottom_up[layer]
        if layer < len(zs) - 1:
          q = precision_weighted(q, self.prior_parameters(layer, zs[layer + 1]))
        q = shape(q, z)
        log_q = log_q + D.diag_gaussian_log_prob(z, q.mean, q.log_var)
      return log_q
    d = self.encoder(x, None)
    for layer, (z, head) in enumerate(zip(zs, self.bottom_up_heads)):
      if layer:
        below = zs[layer - 1]
        d = self.up[layer - 1](below.reshape(-1, below.shape[-1]), None)
        d = d.reshape(below.shape[:-1] + d.shape[-1:])
      q = shape(_gaussian(head(d)), z)
      log_q = log_q + D.diag_gaussian_log_prob(z, q.mean, q.log_var)
    return log_q

  def _top_down(self, x, layer_keys):
    """Draws from the top with precision weighting: `(z per layer, log p [L, K, B], log q [L, K,
    B])`."""
    bottom_up = self.encode(x)
    num_layers = len(self.latent_dims)
    log_p, log_q, zs, z = [None] * num_layers, [None] * num_layers, [None] * num_layers, None
    for layer in reversed(range(num_layers)):
      estimate = bottom_up[layer]
      if layer == num_layers - 1:
        shape = layer_keys.shape[:2] + estimate.mean.shape[-1:]
        q = jax.tree.map(lambda a: jnp.broadcast_to(a, shape), estimate)
        prior = None
      else:
        prior = self.prior_parameters(layer, z)
        q = precision_weighted(estimate, prior)
      z = _sample(layer_keys[..., layer], q.mean, q.log_var)
      log_q[layer] = D.diag_gaussian_log_prob(z, q.mean, q.log_var)
      log_p[layer] = (D.standard_normal_log_prob(z) if prior is None
                      else D.diag_gaussian_log_prob(z, prior.mean, prior.log_var))
      zs[layer] = z
    return tuple(zs), jnp.stack(log_p), jnp.stack(log_q)

  def _bottom_up(self, x, layer_keys):
    """Draws from the bottom, `z_{l+1} ~ q(z_{l+1} | z_l)`: `(z, log p, log q)` as `_top_down`."""
    d = self.encoder(x, None)  # [B, H]
    zs, log_q = [], []
    for layer, head in enumerate(self.bottom_up_heads):
      if layer:
        below = zs[-1]  # [K, B, L_{l-1}]
        d = self.up[layer - 1](below.reshape(-1, below.shape[-1]), None)
        d = d.reshape(below.shape[:-1] + d.shape[-1:])
      q = _gaussian(head(d))
      shape = layer_keys.shape[:2] + q.mean.shape[-1:]
      q = jax.tree.map(lambda a: jnp.broadcast_to(a, shape), q)
      zs.append(_sample(layer_keys[..., layer], q.mean, q.log_var))
      log_q.append(D.diag_gaussian_log_prob(zs[-1], q.mean, q.log_var))
    log_p = [D.diag_gaussian_log_prob(zs[layer], *self.prior_parameters(layer, zs[layer + 1]))
             for layer in range(len(zs) - 1)] + [D.standard_normal_log_prob(zs[-1])]
    return tuple(zs), jnp.stack(log_p), jnp.stack(log_q)

  def _mean(self, z: jax.Array) -> jax.Array:
    """Mean of p(x | z_1) for `z_1 [B, L_1]`: `[B, *data_shape]`."""
    mean = self.likelihood_head.mean(self.decoder(z, None))
    return mean.reshape(z.shape[:-1] + tuple(self.data_shape))

  def sample(self, key: jax.Array, num: int, labels: jax.Array | None = None) -> jax.Array:
    """Means of p(x | z_1) for ancestral draws `z_L ~ N(0, I)`, `z_l ~ p(z_l | z_{l+1})`."""
    keys = jax.random.split(key, len(self.latent_dims))
    z = jax.random.normal(keys[-1], (num, self.latent_dims[-1]))
    for layer in reversed(range(len(self.latent_dims) - 1)):
      z = D.diag_gaussian_sample(keys[layer], *self.prior_parameters(layer, z))
    return self._mean(z)

  def reconstruct(self, x: jax.Array, labels: jax.Array | None = None) -> jax.Array:
    """Mean of p(x | z_1) at the posterior mean of z_1 (along the top-down path of means, for
    top-down inference)."""
    layers = self.encode(x)
    z = layers[0].mean
    if self.inference == "top_down":
      z = layers[-1].mean
      for layer in reversed(range(len(self.latent_dims) - 1)):
        z = precision_weighted(layers[layer], self.prior_parameters(layer, z)).mean
    return self._mean(z).reshape(x.shape)

  def __call__(self, x: jax.Array, keys: jax.Array,
               labels: jax.Array | None = None) -> LogWeights:
    return self.log_weights(x, keys, labels)


def hvae_defaults():
  """The `model` section of `model.kind='hvae'` (without `kind`)."""
  section = network_defaults()
  section.update(dict(
      latent_dims=(16, 8),  # latent sizes per layer, bottom (next to x) to top
      upper_hidden_sizes=(128, 128),  # hidden layers of the nets between layers
      inference="top_down",  # top_down (Ladder VAE) | bottom_up (Burda et al.)
  ))
  section.update(likelihood_defaults())
  section.output_bias_from_data = False  # bernoulli, mlp: per-pixel logit of the train mean
  return section


def _validate(section, config) -> None:
  validate_network(section, config)
  for key in ("latent_dims", "upper_hidden_sizes"):
    if not section[key] or any(not isinstance(v, int) or v <= 0 for v in section[key]):
      raise UserError(f"config key 'model.{key}' must be a non-empty tuple of positive ints, "
                      f"got {section[key]!r}")
  if len(section.latent_dims) < 2:
    raise UserError("model.kind='hvae' needs at least two stochastic layers: set "
                    "model.latent_dims to a tuple of two or more sizes")
  if section.inference not in ("top_down", "bottom_up"):
    raise UserError(f"config key 'model.inference' is {section.inference!r}; choose one of "
                    f"top_down, bottom_up")


@register("hvae", hvae_defaults, _validate)
def build_hvae(section, context) -> HierarchicalVAE:
  likelihood = make_likelihood(section, math.prod(context.data_shape))
  encoder, decoder = make_encoder_decoder(section, context.data_shape, likelihood.params_per_dim,
                                          output_bias(section, context))
  return HierarchicalVAE(
      data_shape=tuple(context.data_shape), latent_dims=tuple(section.latent_dims),
      encoder=encoder, decoder=decoder, likelihood_head=likelihood,
      upper_hidden_sizes=tuple(section.upper_hidden_sizes), activation=section.activation,
      inference=section.inference)
