"""The default digits VAE trained on the IWAE bound with K = 50 (Burda et al., 2016).

    jaxvae train --config=configs/digits_iwae.py --workdir=runs/digits_iwae

Compare with configs/digits_vae.py (the same model on the ELBO) by test log p(x) at K = 1000.
"""

from jaxvae import config as config_lib


def get_config(variant: str = ""):
  config = config_lib.get_config()
  config.train.objective = "iwae"
  config.train.num_samples = 50
  return config_lib.apply_variant(config, variant)
