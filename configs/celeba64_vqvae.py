"""A VQ-VAE on CelebA at 64x64 (tensorflow-datasets `celeb_a`, centre-cropped to 148x148, resized
to 64x64, 5-bit pixels): an 8x8 grid of 64-dim vectors, 512 cosine (L2-normalized) codes with an
EMA codebook, k-means initialization and dead-code restarts; a discretized logistic mixture.

    jaxvae train --config=configs/celeba64_vqvae.py --workdir=runs/celeba64_vqvae
"""

from jaxvae import config as config_lib


def get_config(variant: str = ""):
  config = config_lib.get_config(model="vqvae")
  config.data.source = "tfds"
  config.data.name = "celeb_a"
  config.data.binarize = "none"
  config.data.crop = 148
  config.data.resize = 64
  config.data.num_bits = 5
  config.model.channels = (128, 128, 256)
  config.model.blocks_per_stage = 2
  config.model.activation = "relu"
  config.model.code_dim = 64
  config.model.num_codes = 512
  config.model.cosine_codes = True
  config.model.likelihood = "discretized_logistic"
  config.model.num_mixtures = 5
  config.model.num_bits = 5
  config.train.batch_size = 64
  config.train.num_steps = 100_000
  config.train.learning_rate = 2e-4
  config.train.log_every = 1_000
  config.train.checkpoint_every = 10_000
  config.eval.batch_size = 64
  config = config_lib.apply_variant(config, variant)
  if variant == "smoke":  # A 64x64 centre crop: the exact area resize is too slow for a smoke run.
    config.data.crop, config.data.resize = 64, 0
  config.eval.num_samples = config.eval.chunk_size = 1  # q is a point mass: one sample is the bound
  return config
