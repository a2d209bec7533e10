"""Log-probabilities, samplers, entropies and KLs as pure functions on arrays."""

from jaxvae.distributions.bernoulli import bernoulli_log_prob, bernoulli_mean, bernoulli_sample
from jaxvae.distributions.gaussian import (
    diag_gaussian_log_prob,
    diag_gaussian_sample,
    kl_diag_gaussian_standard_normal,
    standard_normal_log_prob,
)

__all__ = [
    "bernoulli_log_prob",
    "bernoulli_mean",
    "bernoulli_sample",
    "diag_gaussian_log_prob",
    "diag_gaussian_sample",
    "kl_diag_gaussian_standard_normal",
    "standard_normal_log_prob",
]
