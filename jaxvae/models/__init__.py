"""Flax (Linen) models behind one interface (`jaxvae.models.interface`), built by name from the
`model` section of a config (`jaxvae.models.registry`). Importing this package registers the
built-in kinds: vae, cvae, hvae, vdvae, vqvae, vq_prior, toy."""

from jaxvae.models import code_prior, hvae, toy, vae, vdvae, vqvae  # noqa: F401  (they register)
from jaxvae.models.code_prior import VQPrior
from jaxvae.models.interface import Capability, LogWeights, check_model, has
from jaxvae.models.registry import build_model, model_kind, register, registered_kinds
from jaxvae.models.vae import VAE
from jaxvae.models.vqvae import VQVAE

__all__ = ["Capability", "LogWeights", "VAE", "VQPrior", "VQVAE", "build_model", "check_model",
           "has", "model_kind", "register", "registered_kinds"]
