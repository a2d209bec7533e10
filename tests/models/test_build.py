"""Every model family trains a few steps through the one trainer and is evaluated by the one evaluator."""

import math

import pytest

from jaxvae.errors import UserError
from jaxvae.models import build_model
from jaxvae.train import train_and_evaluate

FAMILIES = {  # Combinations that no config file in configs/ trains.
    "full_cov+mixture_prior+gaussian+iwae": dict(posterior="full_cov", prior="mixture",
                                                  likelihood="gaussian"),
    "planar_flow+categorical256": dict(posterior="planar_flow", likelihood="categorical256",
                                       num_bits=2),
}


@pytest.mark.parametrize("name", FAMILIES)
def test_family_trains_and_evaluates(name, smoke_config, tmp_path):
  config = smoke_config
  config.model.update(FAMILIES[name])
  config.train.num_steps = 4
  config.train.checkpoint_every = 4
  config.train.log_every = 2
  if "iwae" in name:
    config.train.objective, config.train.num_samples = "iwae", 3
  if config.model.likelihood != "bernoulli":
    config.data.binarize = "none"
  record = train_and_evaluate(config, str(tmp_path))
  assert record["step"] == 4 and math.isfinite(record["log_px"])
  assert record["log_px"] >= record["elbo"] - 1e-3  # K-sample bound >= its 1-sample mean


def test_resnet_rejects_image_sides_it_cannot_halve(smoke_config):
  smoke_config.model.network = "resnet"
  smoke_config.model.channels = (4, 4, 4, 4)
  with pytest.raises(UserError, match="divisible by 16"):
    build_model(smoke_config.model, (8, 8, 1))
