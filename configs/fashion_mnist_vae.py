"""A convolutional VAE on 8-bit Fashion-MNIST (tensorflow-datasets): ResNet encoder and decoder
(28 -> 14 -> 7), a discretized logistic mixture likelihood over the 256 grey levels.

    jaxvae train --config=configs/fashion_mnist_vae.py --workdir=runs/fashion_mnist
"""

from jaxvae import config as config_lib


def get_config(variant: str = ""):
  config = config_lib.get_config()
  config.data.source = "tfds"
  config.data.name = "fashion_mnist"
  config.data.binarize = "none"
  config.model.network = "resnet"
  config.model.activation = "swish"
  config.model.channels = (32, 64)
  config.model.blocks_per_stage = 2
  config.model.hidden_sizes = (512,)
  config.model.latent_dim = 32
  config.model.likelihood = "discretized_logistic"
  config.model.num_mixtures = 5
  config.train.batch_size = 128
  config.train.num_steps = 100_000
  config.train.log_every = 1_000
  config.train.checkpoint_every = 10_000
  config.eval.num_samples = 1_000
  config.eval.batch_size = 128
  return config_lib.apply_variant(config, variant)
