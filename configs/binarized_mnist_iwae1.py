"""Burda et al. (2016), one stochastic layer: x-200-200-z(50), tanh, Bernoulli likelihood, on
dynamically binarized MNIST from tensorflow-datasets (downloaded on first use).

The paper's six runs of this architecture (VAE and IWAE with K = 1, 5, 50):

    jaxvae train --config=configs/binarized_mnist_iwae1.py --workdir=runs/vae_k1
    jaxvae train --config=configs/binarized_mnist_iwae1.py --workdir=runs/vae_k5 \\
        --config.train.num_samples=5
    jaxvae train --config=configs/binarized_mnist_iwae1.py --workdir=runs/iwae_k50 \\
        --config.train.objective=iwae --config.train.num_samples=50
    (and vae_k50, iwae_k1, iwae_k5 likewise)

The output bias starts at the logit of the mean training pixel of MNIST, 0.1307 (one scalar for all
pixels; the paper's per-pixel initialization is not used). Batch 20, Adam at 1e-3 with epsilon as
in optax; the paper's 3^8 passes with a stepwise decay are replaced by `train.num_steps` at a
constant rate. Test log p(x) with K = 5000 as in the paper.
"""

import math

from jaxvae import config as config_lib

MNIST_MEAN_PIXEL = 0.1307  # mean intensity of the MNIST training images in [0, 1]


def get_config(variant: str = ""):
  config = config_lib.get_config()
  config.data.source = "tfds"
  config.data.name = "mnist"
  config.data.binarize = "dynamic"
  config.model.hidden_sizes = (200, 200)
  config.model.activation = "tanh"
  config.model.latent_dim = 50
  config.model.output_bias = math.log(MNIST_MEAN_PIXEL / (1.0 - MNIST_MEAN_PIXEL))
  config.train.batch_size = 20
  config.train.num_steps = 1_000_000
  config.train.log_every = 5_000
  config.train.checkpoint_every = 50_000
  config.eval.num_samples = 5_000
  config.eval.chunk_size = 500
  config.eval.batch_size = 100
  return config_lib.apply_variant(config, variant)
