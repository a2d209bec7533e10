"""A convolutional VAE on CIFAR-10 (tensorflow-datasets): ResNet encoder and decoder
(32 -> 16 -> 8 -> 4), a discretized logistic mixture likelihood (10 logistics per sub-pixel,
Salimans et al., 2017); reported in bits/dim.

    jaxvae train --config=configs/cifar10_vae.py --workdir=runs/cifar10
"""

from jaxvae import config as config_lib


def get_config(variant: str = ""):
  config = config_lib.get_config()
  config.data.source = "tfds"
  config.data.name = "cifar10"
  config.data.binarize = "none"
  config.model.network = "resnet"
  config.model.activation = "swish"
  config.model.channels = (64, 128, 256)
  config.model.blocks_per_stage = 2
  config.model.hidden_sizes = (1024,)
  config.model.latent_dim = 128
  config.model.likelihood = "discretized_logistic"
  config.model.num_mixtures = 10
  config.train.batch_size = 128
  config.train.num_steps = 200_000
  config.train.learning_rate = 2e-4
  config.train.log_every = 1_000
  config.train.checkpoint_every = 10_000
  config.eval.num_samples = 1_000
  config.eval.batch_size = 128
  return config_lib.apply_variant(config, variant)
