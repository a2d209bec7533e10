"""The model registry and the interface checks: every kind's section is its own, a run's old
config.json (every kind's keys under `model`) migrates, and a model lacking part of the interface
or of a capability it declares is named in one error."""

import os

import flax.linen as nn
import pytest

from jaxvae import config as config_lib
from jaxvae.errors import UserError
from jaxvae.models import Capability, build_model, check_model, registered_kinds
from jaxvae.models.interface import LATENT_VECTOR

OLD = os.path.join(os.path.dirname(__file__), "old_layout_digits_vqvae_config.json")


def test_each_kind_has_its_own_section_and_validates_it():
  for kind in registered_kinds():
    config = config_lib.get_config(model=kind)
    assert set(config.model) == set(config_lib.model_config(kind))
  assert "num_codes" not in config_lib.get_config().model  # a VAE carries no VQ keys
  assert "posterior" not in config_lib.get_config(model="vqvae").model
  config = config_lib.get_config(model="vqvae")
  config.model.codebook_chunk_size = 7
  with pytest.raises(UserError, match="codebook_chunk_size"):
    config_lib.validate(config)


def test_an_old_layout_config_json_migrates():
  """A digits VQ-VAE run's config.json from before per-kind sections (written by that version)."""
  config = config_lib.load_config(OLD)
  assert config.model.kind == "vqvae" and config.model.code_dim == 8
  assert "latent_dim" not in config.model and "hidden_sizes" not in config.model
  assert config.model.channels == (32,) and config.model.dead_code_steps == 50
  assert config.data.image_shape == () and config.eval.after_training  # keys added since


def test_a_wrong_kind_names_the_registered_kinds():
  config = config_lib.get_config()
  config.model.kind = "nvae"
  with pytest.raises(UserError, match="neither a registered kind .*vae.* nor a 'module:Class'"):
    config_lib.validate(config)


class _NoSample(nn.Module):
  data_shape: tuple = (1,)

  def log_weights(self, x, keys, labels=None):
    raise NotImplementedError

  def reconstruct(self, x, labels=None):
    raise NotImplementedError


class _ClaimsLatent(_NoSample):
  capabilities = frozenset({LATENT_VECTOR})

  def sample(self, key, num, labels=None):
    raise NotImplementedError


def test_check_model_names_what_is_missing():
  with pytest.raises(UserError, match="_NoSample lacks 'sample', which the model interface needs"):
    check_model(_NoSample())
  with pytest.raises(UserError, match="lacks 'latent_dim', which capability LATENT_VECTOR needs"):
    check_model(_ClaimsLatent())
  assert Capability.LATENT_VECTOR.attributes == ("latent_dim", "latent_code", "decode_latent")


def test_a_user_model_needs_defaults_for_its_fields():
  with pytest.raises(UserError, match="needs a default"):
    config_lib.get_config(model="jaxvae.models.vae:VAE")
  with pytest.raises(UserError, match="cannot import NoSuchModel"):
    config_lib.get_config(model="jaxvae.models.vae:NoSuchModel")
  config = config_lib.get_config(model="examples.conv_vae:ConvVAE")
  assert dict(config.model) == {"kind": "examples.conv_vae:ConvVAE", "latent_dim": 4,
                                "channels": 16}
  model = build_model(config.model, (8, 8, 1))
  assert (model.data_shape, model.latent_dim) == ((8, 8, 1), 4)
