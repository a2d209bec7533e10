"""The default digits VAE as a beta-VAE (Higgins et al., 2017): the KL weighted by beta = 4, reached
by a linear warm-up over the first 1,000 steps (Bowman et al., 2016).

    jaxvae train --config=configs/digits_beta_vae.py --workdir=runs/digits_beta_vae

A larger beta trades reconstruction (and log p(x)) for a posterior closer to the prior.
"""

from jaxvae import config as config_lib


def get_config(variant: str = ""):
  config = config_lib.get_config()
  config.train.beta = 4.0
  config.train.kl_warmup_steps = 1_000
  return config_lib.apply_variant(config, variant)
