"""A two-layer Ladder VAE (top-down inference, Sønderby et al., 2016) on the digits; the trainer
reports the KL of each layer as kl_layer_0 (bottom) and kl_layer_1. As in the paper, the KL weight
warms up linearly from 0 over the first steps; without it the top layer collapses (measured on the
digits at 4,000 steps: test log p(x) -23.05 with z(8)-z(8) and no warm-up, -22.07 with z(16)-z(8)
and 500 warm-up steps, against -22.26 for the one-layer VAE).

    jaxvae train --config=configs/digits_hvae.py --workdir=runs/digits_hvae
"""

from jaxvae import config as config_lib


def get_config(variant: str = ""):
  config = config_lib.get_config(model="hvae")
  config.model.latent_dims = (16, 8)
  config.model.upper_hidden_sizes = (128, 128)
  config.train.kl_warmup_steps = 500
  return config_lib.apply_variant(config, variant)
