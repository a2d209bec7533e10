"""VDVAE on FFHQ at 256x256, 5-bit pixels (Child, 2021): 66 encoder and 66 top-down blocks of
width 512. Published: 0.61 bits/dim. The settings of VDVAE's `hps.py`
(`jaxvae.models.vdvae.PUBLISHED`).

Data: FFHQ is not in tensorflow-datasets; put its images (any size: they are resized to 256x256 by
exact area averaging) in `data/ffhq/train/` and `data/ffhq/validation/` (VDVAE holds out the last
5,000 of the 70,000), or point `--config.data.path` elsewhere.

    jaxvae train --config=configs/ffhq256_vdvae.py --workdir=runs/ffhq256_vdvae
"""

from jaxvae import config as config_lib
from jaxvae.models.vdvae import apply_published


def get_config(variant: str = ""):
  config = config_lib.get_config(model="vdvae")
  config.data.source = "folder"
  config.data.path = "data/ffhq"
  config.data.binarize = "none"
  config.data.eval_split = "validation"
  config.data.resize = 256
  config.data.num_bits = 5
  apply_published(config, "ffhq256", num_dims=256 * 256 * 3)
  config.model.num_bits = 5
  return config_lib.apply_variant(config, variant)
