"""Likelihood families p(x | z), each registered by name (`model.likelihood`).

A likelihood is a Linen module with `params_per_dim` (P), `log_prob(x [B, D], out [..., B, D, P])
-> [..., B]` and `mean(out) -> [..., D]` (what samples and reconstructions show), on the decoder's
per-pixel output `out` and the data's pixels flattened to `[B, D]`. Adding one is one module in this
package: a factory decorated with `@register_likelihood(name)`, taking the model's config section
and the number of data dimensions D. Every module here is imported with the package.
"""

import dataclasses
import importlib
import pkgutil
from collections.abc import Callable

import flax.linen as nn
import ml_collections

from jaxvae.errors import UserError


@dataclasses.dataclass(frozen=True)
class LikelihoodFamily:
  """`build(section, num_dims)`; `validate(config)` raises `UserError` on data it cannot model."""

  build: Callable[[ml_collections.ConfigDict, int], nn.Module]
  validate: Callable[[ml_collections.ConfigDict], None]


LIKELIHOODS: dict[str, LikelihoodFamily] = {}


def register_likelihood(name: str, validate: Callable | None = None):
  """Decorator registering `build(section, num_dims) -> module` as `model.likelihood=name`."""
  def decorator(build):
    LIKELIHOODS[name] = LikelihoodFamily(build, validate or (lambda config: None))
    return build
  return decorator


def make_likelihood(section: ml_collections.ConfigDict, num_dims: int) -> nn.Module:
  """The likelihood named by `section.likelihood`, for D = `num_dims` data dimensions."""
  if section.likelihood not in LIKELIHOODS:
    raise UserError(f"model.likelihood={section.likelihood!r}; choose one of "
                    f"{', '.join(LIKELIHOODS)}")
  return LIKELIHOODS[section.likelihood].build(section, num_dims)


def likelihood_defaults() -> ml_collections.ConfigDict:
  """The likelihood keys of a model section."""
  return ml_collections.ConfigDict(dict(
      likelihood="bernoulli",  # a registered family: bernoulli | gaussian | ...
      likelihood_scale=0.0,  # gaussian: fixed scale; 0 = learned per-dimension scale
      num_mixtures=5,  # discretized_logistic: logistics per pixel
      num_bits=8,  # discretized_logistic, categorical256: 2^num_bits pixel levels
      output_bias=0.0,  # initial decoder output bias, one value for every pixel
  ))


def validate_likelihood(section: ml_collections.ConfigDict,
                        config: ml_collections.ConfigDict) -> None:
  """The likelihood keys of `section` against the registry and the data of `config`."""
  if section.likelihood not in LIKELIHOODS:
    raise UserError(f"config key 'model.likelihood' is {section.likelihood!r}; choose one of "
                    f"{', '.join(LIKELIHOODS)}")
  if section.likelihood_scale < 0:
    raise UserError(f"config key 'model.likelihood_scale' must be >= 0 (0 = learned), got "
                    f"{section.likelihood_scale!r}")
  if section.num_mixtures <= 0:
    raise UserError(f"config key 'model.num_mixtures' must be positive, got "
                    f"{section.num_mixtures!r}")
  if not 1 <= section.num_bits <= 8:
    raise UserError(f"config key 'model.num_bits' must be in 1..8, got {section.num_bits}")
  LIKELIHOODS[section.likelihood].validate(config)


for _module in pkgutil.iter_modules(__path__):
  importlib.import_module(f"{__name__}.{_module.name}")
