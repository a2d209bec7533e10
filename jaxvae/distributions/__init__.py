"""Log-probabilities, samplers, entropies and KLs as pure functions on arrays.

Conventions: the last axis of a value `x` is the event axis and is reduced by log-probabilities,
entropies and KLs; leading axes are batch axes and broadcast. Every sampler takes an explicit
`jax.random.key`. Pixel likelihoods take images flattened to `[..., D]` (see `categorical` and
`logistic`).
"""

from jaxvae.distributions.bernoulli import (
    bernoulli_entropy,
    bernoulli_log_prob,
    bernoulli_mean,
    bernoulli_sample,
)
from jaxvae.distributions.categorical import (
    categorical_entropy,
    categorical_log_prob,
    categorical_probs,
    categorical_sample,
    kl_categorical_uniform,
    kl_categoricals,
    pixel_levels,
    uniform_categorical_log_prob,
    uniform_categorical_sample,
)
from jaxvae.distributions.full_gaussian import (
    full_gaussian_entropy,
    full_gaussian_log_prob,
    full_gaussian_sample,
    kl_full_gaussian_standard_normal,
    kl_full_gaussians,
    scale_tril_from_raw,
)
from jaxvae.distributions.gaussian import (
    diag_gaussian_entropy,
    diag_gaussian_log_prob,
    diag_gaussian_sample,
    gaussian_log_prob,
    gaussian_sample,
    gaussian_scale_from_raw,
    kl_diag_gaussian_standard_normal,
    kl_diag_gaussians,
    standard_normal_log_prob,
    standard_normal_sample,
)
from jaxvae.distributions.kl import monte_carlo_kl
from jaxvae.distributions.logistic import (
    discretized_logistic_mixture_log_prob,
    discretized_logistic_mixture_sample,
)
from jaxvae.distributions.mixture import (
    mixture_diag_gaussian_log_prob,
    mixture_diag_gaussian_mean,
    mixture_diag_gaussian_sample,
)

__all__ = [
    "bernoulli_entropy",
    "bernoulli_log_prob",
    "bernoulli_mean",
    "bernoulli_sample",
    "categorical_entropy",
    "categorical_log_prob",
    "categorical_probs",
    "categorical_sample",
    "diag_gaussian_entropy",
    "diag_gaussian_log_prob",
    "diag_gaussian_sample",
    "discretized_logistic_mixture_log_prob",
    "discretized_logistic_mixture_sample",
    "full_gaussian_entropy",
    "full_gaussian_log_prob",
    "full_gaussian_sample",
    "gaussian_log_prob",
    "gaussian_sample",
    "gaussian_scale_from_raw",
    "kl_categorical_uniform",
    "kl_categoricals",
    "kl_diag_gaussian_standard_normal",
    "kl_diag_gaussians",
    "kl_full_gaussian_standard_normal",
    "kl_full_gaussians",
    "mixture_diag_gaussian_log_prob",
    "mixture_diag_gaussian_mean",
    "mixture_diag_gaussian_sample",
    "monte_carlo_kl",
    "pixel_levels",
    "scale_tril_from_raw",
    "standard_normal_log_prob",
    "standard_normal_sample",
    "uniform_categorical_log_prob",
    "uniform_categorical_sample",
]
