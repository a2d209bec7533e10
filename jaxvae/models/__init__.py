"""Flax (Linen) models behind one interface: `log_weights`, `sample`, `reconstruct`, `encode`, `decode`."""

import ml_collections

from jaxvae.errors import UserError
from jaxvae.models.interface import LogWeights
from jaxvae.models.vae import VAE


def build_model(model: ml_collections.ConfigDict, data_shape: tuple[int, ...]):
  """The model named by the `model` section of a config, for data of shape `data_shape`.

  Raises `UserError` when the network cannot take data of this shape.
  """
  if model.network == "resnet" and model.kind != "toy":
    scale = 2 ** len(model.channels)
    if len(data_shape) != 3 or data_shape[0] % scale or data_shape[1] % scale:
      raise UserError(f"model.network='resnet' with {len(model.channels)} stages (model.channels="
                      f"{tuple(model.channels)}) needs [H, W, C] images with H and W divisible by "
                      f"{scale}; the data are {tuple(data_shape)}: use fewer stages or "
                      f"model.network='mlp'")
  if model.kind == "toy":
    from jaxvae.models.toy import ToyModel

    return ToyModel()
  if model.kind == "hvae":
    from jaxvae.models.hvae import HierarchicalVAE

    return HierarchicalVAE(
        data_shape=tuple(data_shape), latent_dims=tuple(model.latent_dims),
        hidden_sizes=tuple(model.hidden_sizes), upper_hidden_sizes=tuple(model.upper_hidden_sizes),
        activation=model.activation, network=model.network, channels=tuple(model.channels),
        blocks_per_stage=model.blocks_per_stage, likelihood=model.likelihood,
        likelihood_scale=model.likelihood_scale, num_mixtures=model.num_mixtures,
        num_bits=model.num_bits, output_bias=model.output_bias)
  return VAE(
      data_shape=tuple(data_shape), latent_dim=model.latent_dim,
      hidden_sizes=tuple(model.hidden_sizes), activation=model.activation, network=model.network,
      channels=tuple(model.channels), blocks_per_stage=model.blocks_per_stage,
      posterior=model.posterior, num_flows=model.num_flows, num_components=model.num_components,
      prior=model.prior, num_pseudo_inputs=model.num_pseudo_inputs, likelihood=model.likelihood,
      likelihood_scale=model.likelihood_scale, num_mixtures=model.num_mixtures,
      num_bits=model.num_bits, num_classes=model.num_classes if model.kind == "cvae" else 0,
      output_bias=model.output_bias)


__all__ = ["LogWeights", "VAE", "build_model"]
