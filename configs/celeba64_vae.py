"""A convolutional VAE on CelebA at 64x64 (tensorflow-datasets `celeb_a`, 218x178 faces centre-
cropped to 148x148 and resized to 64x64): ResNet encoder and decoder (64 -> 32 -> 16 -> 8 -> 4), a
discretized logistic mixture likelihood on 5-bit pixels (as Glow's CelebA).

    jaxvae train --config=configs/celeba64_vae.py --workdir=runs/celeba64
"""

from jaxvae import config as config_lib


def get_config(variant: str = ""):
  config = config_lib.get_config()
  config.data.source = "tfds"
  config.data.name = "celeb_a"
  config.data.binarize = "none"
  config.data.crop = 148
  config.data.resize = 64
  config.data.num_bits = 5
  config.data.eval_split = "test"
  config.model.network = "resnet"
  config.model.activation = "swish"
  config.model.channels = (64, 128, 256, 256)
  config.model.blocks_per_stage = 2
  config.model.hidden_sizes = (1024,)
  config.model.latent_dim = 256
  config.model.likelihood = "discretized_logistic"
  config.model.num_mixtures = 5
  config.model.num_bits = 5
  config.train.batch_size = 64
  config.train.num_steps = 200_000
  config.train.learning_rate = 2e-4
  config.train.log_every = 1_000
  config.train.checkpoint_every = 10_000
  config.eval.num_samples = 1_000
  config.eval.batch_size = 64
  config = config_lib.apply_variant(config, variant)
  if variant == "smoke":  # A 64x64 centre crop: the exact area resize is too slow for a smoke run.
    config.data.crop, config.data.resize = 64, 0
  return config
