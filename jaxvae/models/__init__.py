"""Flax (Linen) models behind one interface: `log_weights`, `sample`, `reconstruct`, `encode`, `decode`."""

import ml_collections

from jaxvae.errors import UserError
from jaxvae.models.code_prior import VQPrior
from jaxvae.models.interface import LogWeights
from jaxvae.models.vae import VAE
from jaxvae.models.vqvae import VQVAE


def build_model(model: ml_collections.ConfigDict, data_shape: tuple[int, ...],
                output_bias: tuple[float, ...] | None = None):
  """The model named by the `model` section of a config, for data of shape `data_shape`.

  `output_bias`, one initial decoder output bias per data dimension, replaces the scalar
  `model.output_bias` (the trainer passes it for `model.output_bias_from_data`; it changes only
  the initial parameters). Raises `UserError` when the network cannot take data of this shape.
  """
  output_bias = model.output_bias if output_bias is None else output_bias
  if (model.network == "resnet" and model.kind != "toy") or model.kind == "vqvae":
    scale = 2 ** len(model.channels)
    if len(data_shape) != 3 or data_shape[0] % scale or data_shape[1] % scale:
      network = "model.kind='vqvae'" if model.kind == "vqvae" else "model.network='resnet'"
      raise UserError(f"{network} with {len(model.channels)} stages (model.channels="
                      f"{tuple(model.channels)}) needs [H, W, C] images with H and W divisible by "
                      f"{scale}; the data are {tuple(data_shape)}: use fewer stages or "
                      f"model.network='mlp'")
  if model.kind == "vqvae":
    return VQVAE(
        data_shape=tuple(data_shape), num_codes=model.num_codes, code_dim=model.latent_dim,
        channels=tuple(model.channels), blocks_per_stage=model.blocks_per_stage,
        activation=model.activation, likelihood=model.likelihood,
        likelihood_scale=model.likelihood_scale, num_mixtures=model.num_mixtures,
        num_bits=model.num_bits, output_bias=output_bias,
        commitment_cost=model.commitment_cost, codebook_update=model.codebook_update,
        codebook_decay=model.codebook_decay, codebook_epsilon=model.codebook_epsilon,
        codebook_init=model.codebook_init, dead_code_steps=model.dead_code_steps,
        restart_dead_codes=model.restart_dead_codes, cosine_codes=model.cosine_codes,
        chunk_size=model.codebook_chunk_size or None)
  if model.kind == "vq_prior":
    from jaxvae.models.code_prior import load_first_stage

    return VQPrior(load_first_stage(model.first_stage_workdir, data_shape),
                   model.code_prior_width, model.code_prior_layers, model.code_prior_heads)
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
        num_bits=model.num_bits, output_bias=output_bias, inference=model.inference)
  return VAE(
      data_shape=tuple(data_shape), latent_dim=model.latent_dim,
      hidden_sizes=tuple(model.hidden_sizes), activation=model.activation, network=model.network,
      channels=tuple(model.channels), blocks_per_stage=model.blocks_per_stage,
      posterior=model.posterior, num_flows=model.num_flows, num_components=model.num_components,
      prior=model.prior, num_pseudo_inputs=model.num_pseudo_inputs, likelihood=model.likelihood,
      likelihood_scale=model.likelihood_scale, num_mixtures=model.num_mixtures,
      num_bits=model.num_bits, num_classes=model.num_classes if model.kind == "cvae" else 0,
      output_bias=output_bias)


__all__ = ["LogWeights", "VAE", "VQPrior", "VQVAE", "build_model"]
