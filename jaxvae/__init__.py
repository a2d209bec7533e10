"""jaxvae: variational autoencoders at scale with JAX and Flax, and importance-sampled log p(x).

The public API; everything else may change between versions. See docs/architecture.md.
"""

from jaxvae import distributions, losses
from jaxvae.config import get_config, model_config
from jaxvae.errors import UserError
from jaxvae.eval import evaluate, follow, sample_to_png
from jaxvae.models import VAE, VQVAE, Capability, LogWeights, VQPrior, check_model, has
from jaxvae.runtime.trained import build_model, load_trained
from jaxvae.train import train_and_evaluate

__version__ = "0.1.0"

__all__ = [
    "VAE",
    "VQPrior",
    "VQVAE",
    "Capability",
    "LogWeights",
    "UserError",
    "build_model",
    "check_model",
    "distributions",
    "evaluate",
    "follow",
    "get_config",
    "has",
    "load_trained",
    "losses",
    "model_config",
    "sample_to_png",
    "train_and_evaluate",
]
