"""A VQ-VAE on dynamically binarized MNIST (tensorflow-datasets): 28x28 -> a 7x7 grid of 32-dim
vectors, 256 codes with an EMA codebook, k-means initialization and dead-code restarts.

    jaxvae train --config=configs/mnist_vqvae.py --workdir=runs/mnist_vqvae
"""

from jaxvae import config as config_lib


def get_config(variant: str = ""):
  config = config_lib.get_config(model="vqvae")
  config.data.source = "tfds"
  config.data.name = "mnist"
  config.model.channels = (32, 64)
  config.model.blocks_per_stage = 2
  config.model.activation = "relu"
  config.model.code_dim = 32
  config.model.num_codes = 256
  config.train.batch_size = 128
  config.train.num_steps = 50_000
  config.train.log_every = 1_000
  config.train.checkpoint_every = 10_000
  config.eval.batch_size = 500
  config = config_lib.apply_variant(config, variant)
  config.eval.num_samples = config.eval.chunk_size = 1  # q is a point mass: one sample is the bound
  return config
