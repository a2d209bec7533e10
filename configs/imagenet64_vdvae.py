"""VDVAE on ImageNet 64x64 (Child, 2021): 75 encoder and 75 top-down blocks of width 512.
Published: 3.52 bits/dim. The settings of VDVAE's `hps.py` (`jaxvae.models.vdvae.PUBLISHED`).

Data: tensorflow-datasets `imagenet_resized/64x64` (box resizing; the published figure is on van
den Oord et al.'s downsampled ImageNet, see configs/imagenet32_vdvae.py).

    jaxvae train --config=configs/imagenet64_vdvae.py --workdir=runs/imagenet64_vdvae
"""

from jaxvae import config as config_lib
from jaxvae.models.vdvae import apply_published


def get_config(variant: str = ""):
  config = config_lib.get_config(model="vdvae")
  config.data.source = "tfds"
  config.data.name = "imagenet_resized/64x64"
  config.data.binarize = "none"
  config.data.eval_split = "validation"
  apply_published(config, "imagenet64", num_dims=64 * 64 * 3)
  return config_lib.apply_variant(config, variant)
