"""A VAE on dynamically binarized MNIST from tensorflow-datasets (downloaded on first use).

    jaxvae train --config=configs/mnist_vae.py --workdir=runs/mnist_vae
"""

from jaxvae import config as config_lib


def get_config(variant: str = ""):
  config = config_lib.get_config()
  config.data.source = "tfds"
  config.data.name = "mnist"
  config.model.latent_dim = 32
  config.model.hidden_sizes = (512, 256)
  config.train.batch_size = 128
  config.train.num_steps = 100_000
  config.train.log_every = 1_000
  config.train.checkpoint_every = 10_000
  config.eval.num_samples = 5_000
  config.eval.chunk_size = 500
  config.eval.batch_size = 500
  return config_lib.apply_variant(config, variant)
