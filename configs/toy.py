"""The seeds' 1-D toy: a discrete z in {0, 1} learns bimodal data; ELBO by exact enumeration.

    jaxvae train --config=configs/toy.py --workdir=runs/toy
    jaxvae train --config=configs/toy.py:smoke --workdir=/tmp/toy

The evaluator's importance-sampled log p(x) must match the model's exact
`logsumexp_z log p(x, z)` (tests/models/test_toy.py).
"""

from jaxvae import config as config_lib


def get_config(variant: str = ""):
  config = config_lib.get_config(model="toy")
  config.data.source = "toy"
  config.data.binarize = "none"
  config.train.objective = "exact_elbo"
  config.train.batch_size = 128
  config.train.learning_rate = 0.05
  config.train.num_steps = 400
  config.train.log_every = 100
  config.train.checkpoint_every = 400
  config.eval.num_samples = 5_000
  config.eval.chunk_size = 1_000
  config.eval.batch_size = 128
  config = config_lib.apply_variant(config, variant)
  if variant == "smoke":
    config.eval.num_samples = 5_000  # the toy is tiny: the smoke run checks the full estimate
    config.eval.chunk_size = 1_000
  return config
