"""The standard likelihood families: Bernoulli, Gaussian, discretized logistic mixture and
categorical-256 (see `jaxvae.models.likelihoods` for the interface)."""

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxvae import distributions as D
from jaxvae.errors import UserError
from jaxvae.models.likelihoods import register_likelihood


class BernoulliLikelihood(nn.Module):
  """p(x | z) = prod_d Bernoulli(x_d; sigmoid(logit_d)), for binarized images."""

  num_dims: int
  params_per_dim: int = 1

  def log_prob(self, x, out):
    return D.bernoulli_log_prob(x, out[..., 0])

  def mean(self, out):
    return D.bernoulli_mean(out[..., 0])


class GaussianLikelihood(nn.Module):
  """p(x | z) = N(x; mean(z), scale^2 I) with a fixed `scale`, or, for `scale = 0`, a learned
  per-dimension scale `softplus(raw_d) + 1e-3` (floored, `gaussian_scale_from_raw`)."""

  num_dims: int
  scale: float = 0.0
  params_per_dim: int = 1

  def setup(self):
    if not self.scale:
      self.raw_scale = self.param("raw_scale", nn.initializers.zeros, (self.num_dims,))

  def likelihood_scale(self):
    """The scale: the fixed float, or the learned `[D]` vector."""
    return self.scale if self.scale else D.gaussian_scale_from_raw(self.raw_scale)

  def log_prob(self, x, out):
    return D.gaussian_log_prob(x, out[..., 0], self.likelihood_scale())

  def mean(self, out):
    return out[..., 0]


class DiscretizedLogisticLikelihood(nn.Module):
  """p(x | z) = prod_d discretized mixture of `num_mixtures` logistics on `2^num_bits` levels
  (Salimans et al., 2017); the output holds `(logits, means, log_scales)` per pixel."""

  num_dims: int
  num_mixtures: int = 5
  num_bits: int = 8

  @property
  def params_per_dim(self):
    return 3 * self.num_mixtures

  def _split(self, out):
    logits, means, log_scales = jnp.split(out, 3, axis=-1)
    return logits, means + 0.5, log_scales  # means start at mid-grey

  def log_prob(self, x, out):
    return D.discretized_logistic_mixture_log_prob(x, *self._split(out), num_bits=self.num_bits)

  def mean(self, out):
    logits, means, _ = self._split(out)
    return jnp.clip(jnp.sum(jax.nn.softmax(logits, axis=-1) * means, axis=-1), 0.0, 1.0)


class Categorical256Likelihood(nn.Module):
  """p(x | z) = prod_d Categorical(level_d; softmax(logits_d)) over `2^num_bits` pixel levels
  (van den Oord et al., 2016); `num_bits = 8` is categorical-256."""

  num_dims: int
  num_bits: int = 8

  @property
  def params_per_dim(self):
    return 2**self.num_bits

  def log_prob(self, x, out):
    return D.categorical_log_prob(D.pixel_levels(x, self.num_bits), out)

  def mean(self, out):
    levels = jnp.arange(2**self.num_bits, dtype=out.dtype) / (2**self.num_bits - 1)
    return jnp.sum(D.categorical_probs(out) * levels, axis=-1)


def _same_levels(config) -> None:
  """The likelihood's pixel levels must be the data's."""
  if config.data.num_bits and config.data.num_bits != config.model.num_bits:
    raise UserError(f"data.num_bits={config.data.num_bits} but model.num_bits="
                    f"{config.model.num_bits}: the likelihood's pixel levels must be the data's; "
                    f"set both to the same value")


@register_likelihood("bernoulli")
def _bernoulli(section, num_dims):
  return BernoulliLikelihood(num_dims)


@register_likelihood("gaussian")
def _gaussian(section, num_dims):
  return GaussianLikelihood(num_dims, section.likelihood_scale)


@register_likelihood("discretized_logistic", validate=_same_levels)
def _discretized_logistic(section, num_dims):
  return DiscretizedLogisticLikelihood(num_dims, section.num_mixtures, section.num_bits)


@register_likelihood("categorical256", validate=_same_levels)
def _categorical256(section, num_dims):
  return Categorical256Likelihood(num_dims, section.num_bits)
