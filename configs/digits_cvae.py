"""A conditional VAE on the digits (Sohn et al., 2015): encoder and decoder see one_hot(label);
samples cycle through the ten classes (`jaxvae sample` draws one column per class).

    jaxvae train --config=configs/digits_cvae.py --workdir=runs/digits_cvae
"""

from jaxvae import config as config_lib


def get_config(variant: str = ""):
  config = config_lib.get_config(model="cvae")
  config.model.num_classes = 10
  return config_lib.apply_variant(config, variant)
