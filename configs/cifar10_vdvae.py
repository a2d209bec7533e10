"""VDVAE on CIFAR-10 (Child, 2021; tensorflow-datasets `cifar10`): 33 encoder and 43 top-down
blocks of width 384, 16 latent channels per group, 39M parameters, a discretized logistic mixture
likelihood. Published: 2.87 bits/dim (test ELBO). The settings of VDVAE's `hps.py`
(`jaxvae.models.vdvae.PUBLISHED`).

    jaxvae train --config=configs/cifar10_vdvae.py --workdir=runs/cifar10_vdvae
"""

from jaxvae import config as config_lib
from jaxvae.models.vdvae import apply_published


def get_config(variant: str = ""):
  config = config_lib.get_config(model="vdvae")
  config.data.source = "tfds"
  config.data.name = "cifar10"
  config.data.binarize = "none"
  apply_published(config, "cifar10", num_dims=32 * 32 * 3)
  return config_lib.apply_variant(config, variant)
