"""Priors p(z) over a latent vector, each registered by name (`model.prior`).

A prior answers `log_prob(z [..., L], model) -> [...]` and `sample(key, num, model, temperature)
-> [num, L]`; `model` is the VAE it belongs to, which the VampPrior needs for q(z | u).
`tempered` says whether a temperature other than 1 is defined (it scales N(0, I) noise).
"""

import math
from collections.abc import Callable

import flax.linen as nn
import jax
import ml_collections

from jaxvae import distributions as D
from jaxvae.errors import UserError


def _untempered(temperature: float, name: str) -> None:
  if temperature != 1.0:
    raise UserError(f"a sampling temperature other than 1 (got {temperature}) scales the noise of "
                    f"a N(0, I) prior; this model's prior is {name}: use temperature 1")


class StandardNormalPrior(nn.Module):
  """p(z) = N(0, I); at temperature T, z = T eps."""

  latent_dim: int
  tempered = True

  def log_prob(self, z, model):
    return D.standard_normal_log_prob(z)

  def sample(self, key, num, model, temperature=1.0):
    return temperature * D.standard_normal_sample(key, (num, self.latent_dim))


class MixturePrior(nn.Module):
  """p(z) = sum_m softmax(logits)_m N(z; mean_m, diag exp(log_var_m)), all learned in the bound
  (e.g. Dilokthanakul et al., 2016). Means start at N(0, 1) draws, variances at 1."""

  latent_dim: int
  num_components: int
  tempered = False

  def setup(self):
    self.logits = self.param("logits", nn.initializers.zeros, (self.num_components,))
    self.means = self.param("means", nn.initializers.normal(1.0),
                            (self.num_components, self.latent_dim))
    self.log_vars = self.param("log_vars", nn.initializers.zeros,
                               (self.num_components, self.latent_dim))

  def log_prob(self, z, model):
    return D.mixture_diag_gaussian_log_prob(z, self.logits, self.means, self.log_vars)

  def sample(self, key, num, model, temperature=1.0):
    _untempered(temperature, "a learned mixture")
    return jax.vmap(lambda k: D.mixture_diag_gaussian_sample(
        k, self.logits, self.means, self.log_vars))(jax.random.split(key, num))


class VampPrior(nn.Module):
  """p(z) = (1/P) sum_p q(z | u_p) over `num_pseudo_inputs` learned pseudo-inputs `u_p [*data_shape]`
  (Tomczak & Welling, 2018); q must have a closed-form density."""

  num_pseudo_inputs: int
  data_shape: tuple[int, ...]
  tempered = False

  def setup(self):
    self.pseudo_inputs = self.param("pseudo_inputs", nn.initializers.uniform(1.0),
                                    (self.num_pseudo_inputs,) + tuple(self.data_shape))

  def log_prob(self, z, model):
    params = model.pseudo_posterior(self.pseudo_inputs)  # [P, ...]
    log_q = model.posterior_head.log_prob(z[..., None, :], params)  # [..., P]
    return jax.nn.logsumexp(log_q, axis=-1) - math.log(self.num_pseudo_inputs)

  def sample(self, key, num, model, temperature=1.0):
    _untempered(temperature, "a VampPrior")
    key_pick, key_z = jax.random.split(key)
    pick = jax.random.randint(key_pick, (num,), 0, self.num_pseudo_inputs)
    params = model.pseudo_posterior(self.pseudo_inputs[pick])
    return model.posterior_head.sample(params, jax.random.split(key_z, (1, num)))[0][0]


PRIORS: dict[str, Callable[[ml_collections.ConfigDict, tuple[int, ...]], nn.Module]] = {
    "standard_normal": lambda section, shape: StandardNormalPrior(section.latent_dim),
    "mixture": lambda section, shape: MixturePrior(section.latent_dim, section.num_components),
    "vamp": lambda section, shape: VampPrior(section.num_pseudo_inputs, tuple(shape)),
}


def make_prior(section: ml_collections.ConfigDict, data_shape: tuple[int, ...]) -> nn.Module:
  """The prior named by `section.prior` (`latent_dim`, `num_components`, `num_pseudo_inputs`)."""
  if section.prior not in PRIORS:
    raise UserError(f"model.prior={section.prior!r}; choose one of {', '.join(PRIORS)}")
  return PRIORS[section.prior](section, data_shape)
