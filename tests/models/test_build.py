"""Every model family trains a few steps through the one trainer and is evaluated by the one evaluator."""

import json
import math

import pytest

from jaxvae.errors import UserError
from jaxvae.models import build_model
from jaxvae.train import train_and_evaluate

FAMILIES = {
    "full_cov+vamp": dict(posterior="full_cov", prior="vamp"),
    "mixture+mixture_prior+iwae": dict(posterior="mixture", prior="mixture"),
    "planar_flow+gaussian_learned": dict(posterior="planar_flow", likelihood="gaussian"),
    "iaf+logistic": dict(posterior="iaf", likelihood="discretized_logistic", num_mixtures=2),
    "hvae_3_layers": dict(kind="hvae", latent_dims=(6, 4, 2)),
    "resnet+categorical256+cvae": dict(network="resnet", channels=(4, 4), activation="relu",
                                      likelihood="categorical256", num_bits=2, kind="cvae"),
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
  if config.model.kind == "hvae":
    metrics = [json.loads(line) for line in open(tmp_path / "metrics.jsonl")]
    assert all(f"kl_layer_{i}" in metrics[-1] for i in range(3))
  assert record["log_px"] >= record["elbo"] - 1e-3  # K-sample bound >= its 1-sample mean


def test_resnet_rejects_image_sides_it_cannot_halve(smoke_config):
  smoke_config.model.network = "resnet"
  smoke_config.model.channels = (4, 4, 4, 4)
  with pytest.raises(UserError, match="divisible by 16"):
    build_model(smoke_config.model, (8, 8, 1))
