"""jaxvae: variational autoencoders at scale with JAX and Flax, and importance-sampled log p(x).

The public API; everything else may change between versions.
"""

from jaxvae import distributions, losses
from jaxvae.config import get_config
from jaxvae.errors import UserError
from jaxvae.eval import evaluate, sample_to_png
from jaxvae.models import VAE, VQVAE, LogWeights, VQPrior, build_model
from jaxvae.train import train_and_evaluate

__version__ = "0.1.0"

__all__ = [
    "VAE",
    "VQPrior",
    "VQVAE",
    "LogWeights",
    "UserError",
    "build_model",
    "distributions",
    "evaluate",
    "get_config",
    "losses",
    "sample_to_png",
    "train_and_evaluate",
]
