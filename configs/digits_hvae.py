"""A two-layer Ladder VAE (top-down inference, Sønderby et al., 2016) on the digits; the trainer
reports the KL of each layer as kl_layer_0 (bottom) and kl_layer_1.

    jaxvae train --config=configs/digits_hvae.py --workdir=runs/digits_hvae
"""

from jaxvae import config as config_lib


def get_config(variant: str = ""):
  config = config_lib.get_config()
  config.model.kind = "hvae"
  config.model.latent_dims = (16, 8)
  config.model.upper_hidden_sizes = (128, 128)
  return config_lib.apply_variant(config, variant)
