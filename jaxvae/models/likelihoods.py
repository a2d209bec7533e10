"""Likelihood families p(x | z) on the decoder's per-pixel output `out [..., D, P]`.

Each is a small Linen module with `params_per_dim` (P), `log_prob(x [B, D], out [..., B, D, P]) ->
[..., B]` and `mean(out) -> [..., D]` (what `sample` and `reconstruct` show). Pixels are the floats
`jaxvae.data` delivers, flattened to `[B, D]`.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxvae import distributions as D


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


def make_likelihood(name: str, num_dims: int, scale: float, num_mixtures: int,
                    num_bits: int) -> nn.Module:
  """The likelihood named by `model.likelihood`."""
  if name == "bernoulli":
    return BernoulliLikelihood(num_dims)
  if name == "gaussian":
    return GaussianLikelihood(num_dims, scale)
  if name == "discretized_logistic":
    return DiscretizedLogisticLikelihood(num_dims, num_mixtures, num_bits)
  if name == "categorical256":
    return Categorical256Likelihood(num_dims, num_bits)
  raise ValueError(f"unknown likelihood {name!r}")
