"""Per-example objectives: every function returns one value per example, never a batch mean."""

from jaxvae.losses.bounds import (
    bits_per_dim,
    chunked_iwae_bound,
    elbo,
    elbo_kl_form,
    iwae_bound,
    sample_keys,
)
from jaxvae.losses.kl_weighting import free_bits_kl, kl_warmup_beta
from jaxvae.losses.score_function import leave_one_out_baseline, score_function_surrogate
from jaxvae.losses.vq import (
    Quantized,
    nearest_codes,
    straight_through,
    vector_quantize,
    vq_codebook_loss,
    vq_commitment_loss,
    vq_vae_loss,
)

__all__ = [
    "Quantized",
    "bits_per_dim",
    "chunked_iwae_bound",
    "elbo",
    "elbo_kl_form",
    "free_bits_kl",
    "iwae_bound",
    "kl_warmup_beta",
    "leave_one_out_baseline",
    "nearest_codes",
    "sample_keys",
    "score_function_surrogate",
    "straight_through",
    "vector_quantize",
    "vq_codebook_loss",
    "vq_commitment_loss",
    "vq_vae_loss",
]
