"""A model object of the user's own, handed to the library: trained, resumed and evaluated by the
same calls as a built-in one, with the same numbers as when the config names it."""

import jax
import numpy as np
import pytest

from examples.conv_vae import ConvVAE
from jaxvae import config as config_lib
from jaxvae import evaluate, train_and_evaluate
from jaxvae.errors import UserError
from jaxvae.models import LogWeights
from jaxvae.runtime.trained import load_trained


def _config(tfds_dir):
  config = config_lib.get_config("smoke", model="examples.conv_vae:ConvVAE")
  config.data.data_dir = tfds_dir
  config.train.progress_bar = False
  return config


def test_model_argument_and_import_path_train_the_same_model(tfds_dir, tmp_path):
  config = _config(tfds_dir)
  by_name = train_and_evaluate(config, str(tmp_path / "by_name"))
  model = ConvVAE(data_shape=(8, 8, 1), latent_dim=config.model.latent_dim,
                  channels=config.model.channels)
  given = train_and_evaluate(config, str(tmp_path / "given"), model=model)
  assert given["log_px"] == by_name["log_px"]
  again = evaluate(config, str(tmp_path / "given"), num_samples=7, model=model)
  assert np.isfinite(again["log_px"]) and again["num_samples"] == 7
  a = load_trained(str(tmp_path / "by_name")).variables
  b = load_trained(str(tmp_path / "given"), model=model).variables
  assert all(np.array_equal(x, y) for x, y in zip(
      jax.tree.leaves(a), jax.tree.leaves(b)))


class _OneSample(ConvVAE):
  """A broken model: its log weights have lost the K axis."""

  def log_weights(self, x, keys, labels=None):
    return LogWeights(*(a[0] for a in super().log_weights(x, keys, labels)))


def test_a_model_whose_log_weights_are_not_k_by_b_is_one_clear_error(tfds_dir, tmp_path):
  config = _config(tfds_dir)
  with pytest.raises(UserError, match=r"_OneSample.log_weights must return LogWeights of \[K, B\]"):
    train_and_evaluate(config, str(tmp_path), model=_OneSample(data_shape=(8, 8, 1)))
