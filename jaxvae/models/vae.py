"""The variational autoencoder (Kingma & Welling, 2014; Rezende et al., 2014), composed of an
encoder, a decoder, a posterior, a prior and a likelihood; optionally conditioned on labels (Sohn
et al., 2015). Registered as `model.kind` 'vae' and 'cvae'.
"""

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxvae import distributions as D
from jaxvae.errors import UserError
from jaxvae.models import interface
from jaxvae.models.interface import LogWeights
from jaxvae.models.likelihoods import likelihood_defaults, make_likelihood, validate_likelihood
from jaxvae.models.networks import ACTIVATIONS, NETWORKS, make_encoder_decoder, network_defaults
from jaxvae.models.posteriors import (POSTERIORS, DiagGaussian, DiagGaussianPosterior,
                                      make_posterior)
from jaxvae.models.priors import PRIORS, StandardNormalPrior, VampPrior, make_prior
from jaxvae.models.registry import register


class VAE(nn.Module):
  """log w = log p(x | z) + log p(z) - log q(z | x), from its components:

  - `encoder`: `(x [B, *data_shape], condition [B, C] | None) -> h [B, F]`;
  - `decoder`: `(z [..., B, L], condition) -> [..., B, D, P]` likelihood parameters per pixel;
  - `posterior_head`: a family of `jaxvae.models.posteriors` on `h`;
  - `prior`: a prior of `jaxvae.models.priors`;
  - `likelihood_head`: a family of `jaxvae.models.likelihoods`, P parameters per pixel.

  `num_classes > 0` makes it a conditional VAE: encoder and decoder both see `one_hot(label)`.
  """

  data_shape: tuple[int, ...]
  latent_dim: int
  encoder: nn.Module
  decoder: nn.Module
  posterior_head: nn.Module
  prior: nn.Module
  likelihood_head: nn.Module
  num_classes: int = 0

  @property
  def capabilities(self) -> frozenset:
    c = {interface.LATENT_VECTOR, interface.POSTERIOR_PARAMETERS}
    if self.prior.tempered:
      c.add(interface.TEMPERATURE)
    if self.num_classes:
      c.add(interface.LABELS)
    if (isinstance(self.prior, StandardNormalPrior)
        and isinstance(self.posterior_head, DiagGaussianPosterior)):
      c.add(interface.FACTORIZED_KL)
    if self.posterior_head.density_at_draws:
      c.add(interface.REPARAMETERIZED)
      if not isinstance(self.prior, VampPrior):  # The VampPrior's p(z) runs the encoder.
        c.add(interface.SEPARATE_INFERENCE)
    return frozenset(c)

  inference_modules = ("encoder", "posterior_head")

  def _condition(self, labels):
    """`one_hot(labels) [B, C]` for a conditional VAE, else None."""
    if not self.num_classes:
      return None
    if labels is None:
      raise UserError(f"this conditional VAE (num_classes={self.num_classes}) needs the labels "
                      f"of its examples; the data have none")
    return jax.nn.one_hot(labels, self.num_classes, dtype=jnp.float32)

  def posterior_parameters(self, x: jax.Array, labels: jax.Array | None = None):
    """`[B, *data_shape]` -> the parameters of q(z | x), a NamedTuple of `[B, ...]` arrays
    (`DiagGaussian(mean, log_var)` for the diagonal Gaussian)."""
    return self.posterior_head.parameters(self.encoder(x, self._condition(labels)))

  def pseudo_posterior(self, u: jax.Array):
    """q's parameters at unlabelled inputs `u [P, *data_shape]` (the VampPrior's pseudo-inputs)."""
    return self.posterior_head.parameters(self.encoder(u, None))

  def _decode(self, z: jax.Array, labels: jax.Array | None) -> jax.Array:
    """`[..., B, L]` -> likelihood parameters `[..., B, D, P]` on the flattened image."""
    return self.decoder(z, self._condition(labels))

  def log_weights(self, x: jax.Array, keys: jax.Array, labels: jax.Array | None = None,
                  posterior=None) -> LogWeights:
    """Terms of the log importance weights for `z_kb ~ q(z | x_b)` drawn with `keys[k, b]`.

    Args:
      x: `[B, *data_shape]`.
      keys: `[K, B]` random keys, one per (sample, example), so the draws do not depend on how
        samples or examples are batched.
      labels: `[B]` int class labels (a conditional VAE needs them; others ignore them).
      posterior: parameters of q to draw from instead of the encoder's (refinement).

    Returns:
      `LogWeights` with `[K, B]` fields; `log_posterior` includes the flows' log-determinants.
    """
    return self._log_weights_and_latents(x, keys, labels, posterior)[0]

  def log_weights_and_latents(self, x: jax.Array, keys: jax.Array,
                              labels: jax.Array | None = None) -> tuple[LogWeights, jax.Array]:
    """`(log_weights(x, keys, labels), z [K, B, L])`."""
    return self._log_weights_and_latents(x, keys, labels)

  def _log_weights_and_latents(self, x, keys, labels, posterior=None):
    if posterior is None:
      posterior = self.posterior_parameters(x, labels)
    z, log_q = self.posterior_head.sample(posterior, keys)  # [K, B, L], [K, B]
    return LogWeights(
        log_likelihood=self.likelihood_head.log_prob(x.reshape(x.shape[0], -1),
                                                     self._decode(z, labels)),
        log_prior=self.prior.log_prob(z, self),
        log_posterior=log_q,
    ), z

  def posterior_log_prob(self, x: jax.Array, z: jax.Array,
                         labels: jax.Array | None = None) -> jax.Array:
    """`[K, B]` log q(z | x) at draws `z [K, B, L]` (flows: by inverting them)."""
    return self.posterior_head.log_prob(z, self.posterior_parameters(x, labels))

  def decode_latent(self, z: jax.Array, labels: jax.Array | None = None) -> jax.Array:
    """Mean of p(x | z) for `z [B, L]`: `[B, *data_shape]`."""
    mean = self.likelihood_head.mean(self._decode(z, labels))
    return mean.reshape(z.shape[:-1] + tuple(self.data_shape))

  def latent_code(self, x: jax.Array, labels: jax.Array | None = None) -> jax.Array:
    """The mode of q(z | x): `[B, L]` (what `reconstruct` decodes)."""
    return self.posterior_head.mode(self.posterior_parameters(x, labels))

  def sample(self, key: jax.Array, num: int, labels: jax.Array | None = None,
             temperature: float = 1.0) -> jax.Array:
    """Means of p(x | z) for `num` draws z ~ p(z): `[num, *data_shape]`; at `temperature` T
    (N(0, I) prior only) z = T eps. A conditional VAE draws for `labels [num]`, or cycles through
    the classes when None."""
    if self.num_classes and labels is None:
      labels = jnp.arange(num) % self.num_classes
    return self.decode_latent(self.prior.sample(key, num, self, temperature), labels)

  def reconstruct(self, x: jax.Array, labels: jax.Array | None = None) -> jax.Array:
    """Mean of p(x | z) at the posterior's mode z(x): `[B, *data_shape]`."""
    return self.decode_latent(self.latent_code(x, labels), labels).reshape(x.shape)

  def kl_per_dimension(self, x: jax.Array, labels: jax.Array | None = None):
    """`(E_q[z | x] [B, L], KL(q(z_d | x) || N(0, 1)) [B, L])` (diagonal Gaussian q, N(0, I) p)."""
    q: DiagGaussian = self.posterior_parameters(x, labels)
    return q.mean, D.kl_diag_gaussian_standard_normal(q.mean[..., None], q.log_var[..., None])

  def __call__(self, x: jax.Array, keys: jax.Array,
               labels: jax.Array | None = None) -> LogWeights:
    return self.log_weights(x, keys, labels)


def vae_defaults() -> ml_collections.ConfigDict:
  """The `model` section of `model.kind='vae'` (without `kind`)."""
  section = network_defaults()
  section.update(dict(
      latent_dim=8,
      posterior="diag",  # diag | full_cov | mixture | planar_flow | iaf
      num_flows=2,  # planar_flow, iaf: flow steps
      num_components=4,  # mixture posterior (equal weights) and mixture prior
      prior="standard_normal",  # standard_normal | mixture | vamp
      num_pseudo_inputs=50,  # vamp: learned pseudo-inputs
  ))
  section.update(likelihood_defaults())
  section.output_bias_from_data = False  # bernoulli, mlp: per-pixel logit of the train mean
  return section


def cvae_defaults() -> ml_collections.ConfigDict:
  """The `model` section of `model.kind='cvae'`: the VAE's, and the number of label classes."""
  section = vae_defaults()
  section.num_classes = 10
  return section


def output_bias(section, context) -> float | tuple[float, ...]:
  """The decoder's initial output bias: `section.output_bias`, or with `output_bias_from_data`
  the logit of each pixel's training mean (clipped to [1e-3, 1 - 1e-3]), Burda et al. (2016)'s
  initial Bernoulli logits; the scalar wherever the pixel means are not given (a restore)."""
  if not section.output_bias_from_data or context.pixel_mean is None:
    return section.output_bias
  mean = np.clip(np.asarray(context.pixel_mean(), np.float64), 1e-3, 1 - 1e-3).reshape(-1)
  return tuple(float(v) for v in np.log(mean) - np.log1p(-mean))


def validate_network(section, config) -> None:
  """The network and likelihood keys shared by the VAE and the hierarchical VAE."""
  if section.network not in NETWORKS or section.activation not in ACTIVATIONS:
    raise UserError(f"config keys 'model.network' and 'model.activation' are {section.network!r} "
                    f"and {section.activation!r}; choose from {', '.join(NETWORKS)} and "
                    f"{', '.join(ACTIVATIONS)}")
  for key in ("hidden_sizes", "channels"):
    if not section[key] or any(not isinstance(v, int) or v <= 0 for v in section[key]):
      raise UserError(f"config key 'model.{key}' must be a non-empty tuple of positive ints, "
                      f"got {section[key]!r}")
  if section.blocks_per_stage <= 0:
    raise UserError(f"config key 'model.blocks_per_stage' must be positive, got "
                    f"{section.blocks_per_stage!r}")
  validate_likelihood(section, config)
  if section.output_bias_from_data and (section.network != "mlp"
                                        or section.likelihood != "bernoulli"):
    raise UserError("model.output_bias_from_data=True sets one Bernoulli logit per pixel, which "
                    "needs model.network='mlp' and model.likelihood='bernoulli'; set it to False "
                    "(model.output_bias sets one value for all pixels)")


def _validate_vae(section, config) -> None:
  validate_network(section, config)
  for key in ("latent_dim", "num_flows", "num_components", "num_pseudo_inputs"):
    if not section[key] > 0:
      raise UserError(f"config key 'model.{key}' must be positive, got {section[key]!r}")
  if section.posterior not in POSTERIORS or section.prior not in PRIORS:
    raise UserError(f"config keys 'model.posterior' and 'model.prior' are {section.posterior!r} "
                    f"and {section.prior!r}; choose from {', '.join(POSTERIORS)} and "
                    f"{', '.join(PRIORS)}")
  if section.prior == "vamp" and not make_posterior(section).closed_form_density:
    raise UserError("model.prior='vamp' evaluates q(z | pseudo-input) in closed form: use "
                    "model.posterior diag, full_cov or mixture with it")


def _validate_cvae(section, config) -> None:
  _validate_vae(section, config)
  if section.num_classes <= 0:
    raise UserError(f"config key 'model.num_classes' must be positive, got "
                    f"{section.num_classes!r}")
  if section.prior == "vamp":
    raise UserError("model.prior='vamp' is not available for model.kind='cvae' (its pseudo-inputs "
                    "have no labels): use model.prior='standard_normal' or 'mixture'")


def build_vae(section, context, num_classes: int = 0) -> VAE:
  """A VAE from its config section (see `vae_defaults`)."""
  likelihood = make_likelihood(section, math.prod(context.data_shape))
  encoder, decoder = make_encoder_decoder(section, context.data_shape, likelihood.params_per_dim,
                                          output_bias(section, context))
  return VAE(data_shape=tuple(context.data_shape), latent_dim=section.latent_dim, encoder=encoder,
             decoder=decoder, posterior_head=make_posterior(section),
             prior=make_prior(section, context.data_shape), likelihood_head=likelihood,
             num_classes=num_classes)


register("vae", vae_defaults, _validate_vae)(build_vae)
register("cvae", cvae_defaults, _validate_cvae)(
    lambda section, context: build_vae(section, context, section.num_classes))
