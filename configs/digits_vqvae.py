"""A VQ-VAE on the embedded 8x8 digits: a conv encoder to a 4x4 grid of 8-dim vectors, each the
nearest of 64 codes (EMA codebook, k-means initialization on the first batch, dead-code restarts),
a conv decoder and a Bernoulli likelihood. `jaxvae eval` reports the bound with the uniform code
prior; configs/digits_vq_prior.py learns a prior over these codes as a second stage.

    jaxvae train --config=configs/digits_vqvae.py --workdir=runs/digits_vqvae
"""

from jaxvae import config as config_lib


def get_config(variant: str = ""):
  config = config_lib.get_config(model="vqvae")
  config.model.channels = (32,)
  config.model.blocks_per_stage = 1
  config.model.activation = "relu"
  config.model.code_dim = 8
  config.model.num_codes = 64
  config.model.dead_code_steps = 50
  config.train.num_steps = 3_000
  config.train.log_every = 250
  config.train.checkpoint_every = 1_000
  config = config_lib.apply_variant(config, variant)
  config.eval.num_samples = config.eval.chunk_size = 1  # q is a point mass: one sample is the bound
  return config
