"""Flax (Linen) models behind one interface: `log_weights`, `sample`, `reconstruct`, `encode`, `decode`."""

import ml_collections

from jaxvae.models.interface import LogWeights
from jaxvae.models.vae import VAE


def build_model(model: ml_collections.ConfigDict, data_shape: tuple[int, ...]) -> VAE:
  """The model named by the `model` section of a config, for images of shape `data_shape`."""
  return VAE(data_shape=tuple(data_shape), latent_dim=model.latent_dim,
             hidden_sizes=tuple(model.hidden_sizes))


__all__ = ["LogWeights", "VAE", "build_model"]
