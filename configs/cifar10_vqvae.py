"""A VQ-VAE on CIFAR-10 (tensorflow-datasets): 32x32 -> an 8x8 grid of 64-dim vectors, 512 codes
(EMA codebook, k-means initialization, dead-code restarts), a discretized logistic mixture
likelihood; the bound is reported in bits/dim.

    jaxvae train --config=configs/cifar10_vqvae.py --workdir=runs/cifar10_vqvae
"""

from jaxvae import config as config_lib


def get_config(variant: str = ""):
  config = config_lib.get_config(model="vqvae")
  config.data.source = "tfds"
  config.data.name = "cifar10"
  config.data.binarize = "none"
  config.model.channels = (128, 256)
  config.model.blocks_per_stage = 2
  config.model.activation = "relu"
  config.model.code_dim = 64
  config.model.num_codes = 512
  config.model.likelihood = "discretized_logistic"
  config.model.num_mixtures = 10
  config.train.batch_size = 128
  config.train.num_steps = 100_000
  config.train.learning_rate = 2e-4
  config.train.log_every = 1_000
  config.train.checkpoint_every = 10_000
  config.eval.batch_size = 128
  config = config_lib.apply_variant(config, variant)
  config.eval.num_samples = config.eval.chunk_size = 1  # q is a point mass: one sample is the bound
  return config
