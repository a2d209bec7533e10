"""A VAE on the digits with a VampPrior (Tomczak & Welling, 2018) of 50 learned pseudo-inputs and a
mixture-of-Gaussians posterior (4 equally weighted components).

    jaxvae train --config=configs/digits_vamp.py --workdir=runs/digits_vamp
"""

from jaxvae import config as config_lib


def get_config(variant: str = ""):
  config = config_lib.get_config()
  config.model.posterior = "mixture"
  config.model.num_components = 4
  config.model.prior = "vamp"
  config.model.num_pseudo_inputs = 50
  return config_lib.apply_variant(config, variant)
