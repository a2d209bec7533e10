"""The variational autoencoder (Kingma & Welling, 2014; Rezende et al., 2014), with the posterior,
prior, likelihood and networks chosen by name, optionally conditioned on labels (Sohn et al., 2015).
"""

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxvae import distributions as D
from jaxvae.models.interface import LogWeights
from jaxvae.models.likelihoods import make_likelihood
from jaxvae.models.networks import make_encoder_decoder
from jaxvae.models.posteriors import make_posterior


class MixturePrior(nn.Module):
  """p(z) = sum_m softmax(logits)_m N(z; mean_m, diag exp(log_var_m)), all learned in the bound
  (e.g. Dilokthanakul et al., 2016). Means start at N(0, 1) draws, variances at 1."""

  latent_dim: int
  num_components: int

  def setup(self):
    self.logits = self.param("logits", nn.initializers.zeros, (self.num_components,))
    self.means = self.param("means", nn.initializers.normal(1.0),
                            (self.num_components, self.latent_dim))
    self.log_vars = self.param("log_vars", nn.initializers.zeros,
                               (self.num_components, self.latent_dim))

  def log_prob(self, z):
    return D.mixture_diag_gaussian_log_prob(z, self.logits, self.means, self.log_vars)

  def sample(self, key, num):
    keys = jax.random.split(key, num)
    return jax.vmap(lambda k: D.mixture_diag_gaussian_sample(
        k, self.logits, self.means, self.log_vars))(keys)


class VAE(nn.Module):
  """log w = log p(x | z) + log p(z) - log q(z | x), each piece chosen by name.

  - `network`: 'mlp' (`hidden_sizes`, `activation`) or 'resnet' (`channels`, `blocks_per_stage`;
    images `[H, W, C]` with H and W divisible by `2^len(channels)`).
  - `posterior`: 'diag' | 'full_cov' | 'mixture' (`num_components`) | 'planar_flow' | 'iaf'
    (`num_flows`); see `jaxvae.models.posteriors`.
  - `prior`: 'standard_normal' | 'mixture' (`num_components`, learned weights, means and scales) |
    'vamp': `(1/P) sum_p q(z | u_p)` over `num_pseudo_inputs` learned pseudo-inputs `u_p`
    (Tomczak & Welling, 2018; posteriors with a closed-form density only).
  - `likelihood`: 'bernoulli' | 'gaussian' (`likelihood_scale`, 0 = learned) |
    'discretized_logistic' (`num_mixtures`, `num_bits`) | 'categorical256' (`num_bits`).
  - `num_classes > 0` makes it a conditional VAE: encoder and decoder both see `one_hot(label)`.

  Images are `[B, *data_shape]`.
  """

  data_shape: tuple[int, ...]
  latent_dim: int
  hidden_sizes: tuple[int, ...] = (256, 256)
  activation: str = "tanh"
  network: str = "mlp"
  channels: tuple[int, ...] = (32, 64)
  blocks_per_stage: int = 1
  posterior: str = "diag"
  num_flows: int = 2
  num_components: int = 4
  prior: str = "standard_normal"
  num_pseudo_inputs: int = 50
  likelihood: str = "bernoulli"
  likelihood_scale: float = 0.0
  num_mixtures: int = 5
  num_bits: int = 8
  num_classes: int = 0
  output_bias: float | tuple[float, ...] = 0.0

  def setup(self):
    num_dims = math.prod(self.data_shape)
    self.likelihood_head = make_likelihood(self.likelihood, num_dims, self.likelihood_scale,
                                           self.num_mixtures, self.num_bits)
    self.encoder, self.decoder = make_encoder_decoder(self, self.likelihood_head.params_per_dim)
    self.posterior_head = make_posterior(self.posterior, self.latent_dim, self.num_flows,
                                         self.num_components)
    if self.prior == "mixture":
      self.mixture_prior = MixturePrior(self.latent_dim, self.num_components)
    if self.prior == "vamp":
      self.pseudo_inputs = self.param("pseudo_inputs", nn.initializers.uniform(1.0),
                                      (self.num_pseudo_inputs,) + tuple(self.data_shape))

  def _condition(self, labels, batch: int):
    """`one_hot(labels) [B, C]` for a conditional VAE (zeros when labels are None), else None."""
    if not self.num_classes:
      return None
    if labels is None:
      return jnp.zeros((batch, self.num_classes), jnp.float32)
    return jax.nn.one_hot(labels, self.num_classes, dtype=jnp.float32)

  def encode(self, x: jax.Array, labels: jax.Array | None = None) -> tuple[jax.Array, ...]:
    """`[B, *data_shape]` -> the posterior's parameters, a tuple of `[B, ...]` arrays.

    `(mean [B, L], log_var [B, L])` for the diagonal Gaussian; see `jaxvae.models.posteriors` for
    the others. `log_weights` and `reconstruct` get q from here, so overriding `encode` (e.g.
    `jaxvae.eval.posterior.with_posterior`) replaces the posterior everywhere.
    """
    if not self.num_classes:
      labels = None
    return self.posterior_head.parameters(self.encoder(x, self._condition(labels, x.shape[0])))

  def decode(self, z: jax.Array, labels: jax.Array | None = None) -> jax.Array:
    """`[..., B, L]` -> likelihood parameters `[..., B, D, P]` on the flattened image."""
    batch = z.shape[-2] if z.ndim > 1 else 1
    return self.decoder(z, self._condition(labels, batch))

  def _pseudo_posterior(self, u: jax.Array) -> tuple[jax.Array, ...]:
    """q's parameters at pseudo-inputs `u [P, *data_shape]` (not via `encode`, which evaluators
    may override with a per-example posterior)."""
    return self.posterior_head.parameters(self.encoder(u, None))

  def log_prior(self, z: jax.Array) -> jax.Array:
    """log p(z): `[..., L] -> [...]`."""
    if self.prior == "mixture":
      return self.mixture_prior.log_prob(z)
    if self.prior == "vamp":
      params = self._pseudo_posterior(self.pseudo_inputs)  # [P, ...]
      log_q = self.posterior_head.log_prob(z[..., None, :], params)  # [..., P]
      return jax.nn.logsumexp(log_q, axis=-1) - math.log(self.num_pseudo_inputs)
    return D.standard_normal_log_prob(z)

  def sample_prior(self, key: jax.Array, num: int) -> jax.Array:
    """`[num, L]` draws from p(z)."""
    if self.prior == "mixture":
      return self.mixture_prior.sample(key, num)
    if self.prior == "vamp":
      key_pick, key_z = jax.random.split(key)
      pick = jax.random.randint(key_pick, (num,), 0, self.num_pseudo_inputs)
      params = self._pseudo_posterior(self.pseudo_inputs[pick])
      return self.posterior_head.sample(params, jax.random.split(key_z, (1, num)))[0][0]
    return D.standard_normal_sample(key, (num, self.latent_dim))

  def log_weights(self, x: jax.Array, keys: jax.Array,
                  labels: jax.Array | None = None) -> LogWeights:
    """Terms of the log importance weights for `z_kb ~ q(z | x_b)` drawn with `keys[k, b]`.

    Args:
      x: `[B, *data_shape]`.
      keys: `[K, B]` random keys, one per (sample, example), so the draws do not depend on how
        samples or examples are batched.
      labels: `[B]` int class labels; a conditional VAE uses them, others ignore them.

    Returns:
      `LogWeights` with `[K, B]` fields; `log_posterior` includes the flows' log-determinants.
    """
    if not self.num_classes:
      labels = None
    z, log_q = self.posterior_head.sample(self.encode(x, labels), keys)  # [K, B, L], [K, B]
    out = self.decode(z, labels)
    return LogWeights(
        log_likelihood=self.likelihood_head.log_prob(x.reshape(x.shape[0], -1), out),
        log_prior=self.log_prior(z),
        log_posterior=log_q,
    )

  def sample(self, key: jax.Array, num: int, labels: jax.Array | None = None) -> jax.Array:
    """Means of p(x | z) for `num` draws z ~ p(z): `[num, *data_shape]`.

    A conditional VAE draws for `labels [num]`, or cycles through the classes when None.
    """
    if self.num_classes and labels is None:
      labels = jnp.arange(num) % self.num_classes
    z = self.sample_prior(key, num)
    mean = self.likelihood_head.mean(self.decode(z, labels if self.num_classes else None))
    return mean.reshape((num,) + tuple(self.data_shape))

  def reconstruct(self, x: jax.Array, labels: jax.Array | None = None) -> jax.Array:
    """Mean of p(x | z) at the posterior's mode z(x): `[B, *data_shape]`."""
    if not self.num_classes:
      labels = None
    z = self.posterior_head.mode(self.encode(x, labels))
    return self.likelihood_head.mean(self.decode(z, labels)).reshape(x.shape)

  def __call__(self, x: jax.Array, keys: jax.Array,
               labels: jax.Array | None = None) -> LogWeights:
    return self.log_weights(x, keys, labels)
