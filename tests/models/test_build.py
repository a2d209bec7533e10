"""Every model family trains a few steps through the one trainer and is evaluated by the one evaluator."""

import gzip
import importlib.resources
import math

import jax
import numpy as np
import pytest

from jaxvae import data
from jaxvae.errors import UserError
from jaxvae.models import build_model
from jaxvae.train import train_and_evaluate
from jaxvae.runtime.checkpoint import Checkpoints
from jaxvae.runtime.trained import init_variables

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
  if config.model.likelihood == "gaussian":  # The digits' 17 levels are on no 2^b-level grid:
    config.data.binarize = "none"  # categorical256 models them binarized, levels 0 and 2^b - 1.
  record = train_and_evaluate(config, str(tmp_path))
  assert record["step"] == 4 and math.isfinite(record["log_px"])
  assert record["log_px"] >= record["elbo"] - 1e-3  # K-sample bound >= its 1-sample mean


def test_resnet_rejects_image_sides_it_cannot_halve(smoke_config):
  smoke_config.model.network = "resnet"
  smoke_config.model.channels = (4, 4, 4, 4)
  with pytest.raises(UserError, match="divisible by 16"):
    build_model(smoke_config.model, (8, 8, 1))


@pytest.mark.parametrize("changes, message", [
    ({"model.kind": "hvae", "model.latent_dims": (8,)}, "at least two stochastic layers"),
    # The hierarchy builds its own top-down posterior and prior: its section has no prior key.
    ({"model.kind": "hvae", "model.prior": "vamp"}, "unknown config key 'model.prior'"),
    ({"model.prior": "vamp", "model.posterior": "iaf"}, "closed form"),
    ({"model.prior": "vamp", "model.kind": "cvae"}, "pseudo-inputs have no labels"),
    ({"model.kind": "toy", "train.objective": "exact_elbo"}, "set data.source='toy'"),
    ({"model.likelihood": "discretized_logistic", "data.binarize": "none", "data.num_bits": 5},
     "pixel levels must be the data's"),
    ({"model.num_flows": 0}, "'model.num_flows' must be positive"),
    ({"model.posterior": "gaussian"}, "choose from diag, full_cov"),
    ({"model.output_bias_from_data": True, "model.likelihood": "gaussian"}, "one Bernoulli logit"),
    ({"model.output_bias_from_data": True, "model.network": "resnet"}, "one Bernoulli logit"),
])
def test_validate_rejects_model_combinations_that_cannot_work(changes, message):
  from jaxvae import config as config_lib

  config = config_lib.get_config(model=changes.get("model.kind", "vae"))
  for key, value in changes.items():
    section, name = key.split(".")
    if key != "model.kind":
      config[section][name] = value
  with pytest.raises(UserError, match=message):
    config_lib.validate(config)


def test_exact_elbo_objective_is_rejected_for_a_model_without_one(smoke_config, tmp_path):
  """train.objective='exact_elbo' needs capability EXACT_ELBO (the toy model's objective): the
  trainer refuses a VAE before it trains (the check moved from the config to the capability)."""
  from jaxvae.train import loop

  smoke_config.train.objective = "exact_elbo"
  model = build_model(smoke_config.model, (8, 8, 1))
  with pytest.raises(UserError, match="needs capability EXACT_ELBO"):
    loop.check_objective(model, smoke_config.train)
  with pytest.raises(UserError, match="needs capability EXACT_ELBO"):
    train_and_evaluate(smoke_config, str(tmp_path))


@pytest.mark.parametrize("kind", ["vae", "hvae"])
def test_output_bias_from_data_starts_each_logit_at_its_pixel_mean(kind, smoke_config, tmp_path):
  """Burda et al.'s initialization, through the trainer: decoder logit of pixel d = logit(mean_d)
  over the training split, against NumPy on the embedded digits' CSV (the first 1497 rows are the
  train split). At a learning rate of 1e-9 two Adam steps move the bias by about 2e-9."""
  with importlib.resources.files("jaxvae.data").joinpath("digits.csv.gz").open("rb") as f:
    table = np.loadtxt(gzip.open(f), delimiter=",", dtype=np.float64)
  mean = np.clip(table[:1497, :64].mean(0) / 16, 1e-3, 1 - 1e-3)  # 16: the digits' top level
  from jaxvae import config as config_lib

  config = config_lib.get_config("smoke", model=kind)
  config.data.data_dir = smoke_config.data.data_dir
  config.model.output_bias_from_data = True
  split = data.load_split(config.data, config.data.train_split)
  np.testing.assert_allclose(data.mean_image(config.data, split, block=100).ravel(),
                             table[:1497, :64].mean(0) / 16, rtol=1e-12)
  config.train.num_steps = config.train.checkpoint_every = config.train.log_every = 2
  config.train.learning_rate = 1e-9
  train_and_evaluate(config, str(tmp_path))
  model = build_model(config.model, split.image_shape)
  target = init_variables(model, split.image_shape, jax.random.key(0))
  params = Checkpoints(str(tmp_path), read_only=True).restore_variables(2, target)["params"]
  leaves = jax.tree_util.tree_flatten_with_path(params)[0]
  (bias,) = [v for path, v in leaves if "decoder" in jax.tree_util.keystr(path)
             and v.shape == (64,) and jax.tree_util.keystr(path).endswith("['bias']")]
  np.testing.assert_allclose(bias, np.log(mean / (1 - mean)), rtol=1e-6, atol=1e-6)
