"""The second stage of configs/digits_vqvae.py: a causal transformer prior over its 4x4 grids of
codes, trained on the codes of the frozen first stage. `jaxvae eval` reports the bound
`log p(x | z_q) + log p(codes)`; `jaxvae sample` draws codes from the prior and decodes them.

    jaxvae train --config=configs/digits_vqvae.py --workdir=runs/digits_vqvae
    jaxvae train --config=configs/digits_vq_prior.py --workdir=runs/digits_vq_prior \
        --config.model.first_stage_workdir=runs/digits_vqvae
"""

from jaxvae import config as config_lib


def get_config(variant: str = ""):
  config = config_lib.get_config(model="vq_prior")
  config.model.first_stage_workdir = "runs/digits_vqvae"
  config.model.code_prior_layers = 2
  config.model.code_prior_width = 64
  config.model.code_prior_heads = 4
  config.train.num_steps = 3_000
  config.train.log_every = 250
  config.train.checkpoint_every = 1_000
  config = config_lib.apply_variant(config, variant)
  if variant == "smoke":
    config.model.code_prior_width, config.model.code_prior_layers = 16, 1
  config.eval.num_samples = config.eval.chunk_size = 1  # q is a point mass: one sample is the bound
  return config
