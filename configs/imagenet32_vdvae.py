"""VDVAE on ImageNet 32x32 (Child, 2021): 51 encoder and 78 top-down blocks of width 512.
Published: 3.80 bits/dim. The settings of VDVAE's `hps.py` (`jaxvae.models.vdvae.PUBLISHED`).

Data: tensorflow-datasets `imagenet_resized/32x32` (Chrabaszcz et al., 2017: box resizing). The
published figure is on van den Oord et al. (2016)'s downsampled ImageNet (`downsampled_imagenet/
32x32`, whose download is offline): numbers on the two are close but not the same benchmark.

    jaxvae train --config=configs/imagenet32_vdvae.py --workdir=runs/imagenet32_vdvae
"""

from jaxvae import config as config_lib
from jaxvae.models.vdvae import apply_published


def get_config(variant: str = ""):
  config = config_lib.get_config(model="vdvae")
  config.data.source = "tfds"
  config.data.name = "imagenet_resized/32x32"
  config.data.binarize = "none"
  config.data.eval_split = "validation"
  apply_published(config, "imagenet32", num_dims=32 * 32 * 3)
  return config_lib.apply_variant(config, variant)
