"""Burda et al. (2016), two stochastic layers: x-200-200-z1(100)-100-100-z2(50), tanh, Bernoulli
likelihood, on dynamically binarized MNIST from tensorflow-datasets.

The paper's networks and its bottom-up inference q(z1 | x) q(z2 | z1) (`model.kind='hvae'`,
`model.inference='bottom_up'`). VAE and IWAE with K = 1, 5, 50 as in
configs/binarized_mnist_iwae1.py:

    jaxvae train --config=configs/binarized_mnist_iwae2.py --workdir=runs/iwae2_k50 \\
        --config.train.objective=iwae --config.train.num_samples=50
"""

import importlib.util
import os

from jaxvae import config as config_lib


def _one_layer():
  path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "binarized_mnist_iwae1.py")
  spec = importlib.util.spec_from_file_location("binarized_mnist_iwae1", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def get_config(variant: str = ""):
  config = _one_layer().get_config()
  one_layer = config.model  # the shared keys (networks, likelihood, output bias) carry over
  config.model = config_lib.model_config("hvae")
  config.model.update({k: one_layer[k] for k in config.model if k != "kind" and k in one_layer})
  config.model.latent_dims = (100, 50)
  config.model.upper_hidden_sizes = (100, 100)
  config.model.inference = "bottom_up"
  return config_lib.apply_variant(config, variant)
