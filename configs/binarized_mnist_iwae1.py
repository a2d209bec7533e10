"""Burda et al. (2016), one stochastic layer: x-200-200-z(50), tanh, Bernoulli likelihood, on
dynamically binarized MNIST from tensorflow-datasets (downloaded on first use).

The paper's six runs of this architecture (VAE and IWAE with K = 1, 5, 50):

    jaxvae train --config=configs/binarized_mnist_iwae1.py --workdir=runs/vae_k1
    jaxvae train --config=configs/binarized_mnist_iwae1.py --workdir=runs/vae_k5 \\
        --config.train.num_samples=5
    jaxvae train --config=configs/binarized_mnist_iwae1.py --workdir=runs/iwae_k50 \\
        --config.train.objective=iwae --config.train.num_samples=50
    (and vae_k50, iwae_k1, iwae_k5 likewise)

Each pixel's output bias starts at the logit of that pixel's mean over the training images
(`model.output_bias_from_data`), as in the paper's code. Batch 20, Adam at 1e-3 with epsilon as
in optax; the paper's 3^8 passes with a stepwise decay are replaced by `train.num_steps` at a
constant rate. Test log p(x) with K = 5000 as in the paper.
"""

from jaxvae import config as config_lib


def get_config(variant: str = ""):
  config = config_lib.get_config()
  config.data.source = "tfds"
  config.data.name = "mnist"
  config.data.binarize = "dynamic"
  config.model.hidden_sizes = (200, 200)
  config.model.activation = "tanh"
  config.model.latent_dim = 50
  config.model.output_bias_from_data = True
  config.train.batch_size = 20
  config.train.num_steps = 1_000_000
  config.train.log_every = 5_000
  config.train.checkpoint_every = 50_000
  config.eval.num_samples = 5_000
  config.eval.chunk_size = 500
  config.eval.batch_size = 100
  return config_lib.apply_variant(config, variant)
