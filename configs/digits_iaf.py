"""A VAE on the digits whose posterior is a diagonal Gaussian followed by 4 IAF steps (Kingma et
al., 2016): a smaller gap between the ELBO and log p(x) than the diagonal Gaussian alone.

    jaxvae train --config=configs/digits_iaf.py --workdir=runs/digits_iaf
"""

from jaxvae import config as config_lib


def get_config(variant: str = ""):
  config = config_lib.get_config()
  config.model.posterior = "iaf"
  config.model.num_flows = 4
  return config_lib.apply_variant(config, variant)
