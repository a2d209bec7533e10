"""The embedded digits with the user's model of examples/conv_vae.py (importable as `conv_vae`)."""

from jaxvae import config as config_lib


def get_config(variant: str = ""):
  config = config_lib.get_config(model="conv_vae:ConvVAE")
  config.model.latent_dim = 4
  config.train.num_steps = 2_000
  config.train.checkpoint_every = 500
  return config_lib.apply_variant(config, variant)
