"""Every config file loads, follows the schema, and has a smoke variant; validation catches mistakes."""

import importlib.util
import pathlib

import pytest

from jaxvae import config as config_lib
from jaxvae.errors import UserError

CONFIGS = sorted((pathlib.Path(__file__).resolve().parents[1] / "configs").glob("*.py"))


def _load(path):
  spec = importlib.util.spec_from_file_location(path.stem, path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_config_files_follow_the_schema(path):
  module = _load(path)
  config_lib.validate(module.get_config())
  smoke = module.get_config("smoke")
  config_lib.validate(smoke)
  assert smoke.train.num_steps <= 50
  with pytest.raises(UserError, match="unknown config variant"):
    module.get_config("huge")


@pytest.mark.parametrize("key, value, message", [
    ("model.hidden_sizes", (), "non-empty tuple"),
    ("train.learning_rate", 0.0, "must be positive"),
    ("seed", -1, "must be >= 0"),
    ("data.source", "s3", "choose one of embedded, tfds, npz"),
    ("train.skip_grad_norm_sigmas", -1.0, "'train.skip_grad_norm_sigmas' must be >= 0"),
    ("train.grad_norm_stats_decay", 1.0, r"'train.grad_norm_stats_decay' must be in \[0.5, 1\)"),
    ("train.max_rollbacks", -1, "'train.max_rollbacks' must be >= 0"),
    ("train.rollback_lr_factor", 0.0, r"'train.rollback_lr_factor' must be in \(0, 1\]"),
])
def test_validate_rejects(key, value, message):
  config = config_lib.get_config()
  section, _, name = key.rpartition(".")
  (config[section] if section else config)[name] = value
  with pytest.raises(UserError, match=message):
    config_lib.validate(config)


def test_unknown_and_missing_keys_are_rejected():
  config = config_lib.get_config()
  config.model.latent_size = 3
  with pytest.raises(UserError, match="unknown config key 'model.latent_size'"):
    config_lib.validate(config)
  config = config_lib.get_config()
  del config.train["log_every"]
  with pytest.raises(UserError, match="'train.log_every' is missing"):
    config_lib.validate(config)


def test_saved_config_round_trips(tmp_path):
  config = config_lib.get_config("smoke")
  config_lib.save_config(config, str(tmp_path / "config.json"))
  assert config_lib.load_config(str(tmp_path / "config.json")) == config
