"""A small very deep VAE (VDVAE architecture, Child, 2021) on the embedded 8x8 digits: 11 encoder
and 10 top-down blocks of width 32 over resolutions 8, 4 and 1, a latent group of 2 channels in
every top-down block; Bernoulli pixels, dynamic binarization, as the digits VAE and Ladder VAE it
is compared with in BENCHMARKS.md. Trains on one CPU core in minutes.

    jaxvae train --config=configs/digits_vdvae.py --workdir=runs/digits_vdvae
"""

from jaxvae import config as config_lib


def get_config(variant: str = ""):
  config = config_lib.get_config(model="vdvae")
  config.model.encoder_blocks = "8x3,8d2,4x3,4d4,1x3"
  config.model.decoder_blocks = "1x2,4m1,4x3,8m4,8x3"
  config.model.width = 32
  config.model.latent_channels = 2
  config.train.optimizer = "adamw"
  config.train.adam_b2 = 0.9
  config.train.warmup_steps = 100
  config.train.clip_grad_norm = 200.0
  config.train.kl_warmup_steps = 500
  return config_lib.apply_variant(config, variant)
