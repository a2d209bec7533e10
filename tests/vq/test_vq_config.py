"""Bad VQ-VAE and code-prior configs: one clear `UserError` naming the key and the fix."""

import os

import pytest

import jax

from jaxvae import config as config_lib
from jaxvae.errors import UserError
from jaxvae.runtime.checkpoint import Checkpoints
from jaxvae.runtime.trained import build_model
from jaxvae.train import state as state_lib


def _vq(kind="vqvae", **model):
  config = config_lib.get_config(model=kind)
  config.model.update(model)
  return config


def _load_first_stage(workdir, shape):
  """The code prior over the first stage in `workdir`, for data of `shape`."""
  section = config_lib.model_config("vq_prior")
  section.first_stage_workdir = workdir
  return build_model(section, shape)


def _save_initial_checkpoint(config, workdir):
  """A step-0 checkpoint of `config`'s model, as a trained run's workdir holds."""
  model = build_model(config.model, (8, 8, 1))
  optimizer, _ = state_lib.make_optimizer(config.train)
  checkpoints = Checkpoints(workdir)
  checkpoints.save(0, state_lib.init_state(model, optimizer, (8, 8, 1), jax.random.key(0)))
  checkpoints.wait()
  checkpoints.close()


@pytest.mark.parametrize("model, train, message", [
    ({"codebook_update": "loss"}, {}, "codebook_update='loss'"),
    ({"codebook_update": "adam"}, {}, "model.codebook_update"),
    ({"codebook_init": "zeros"}, {}, "model.codebook_init"),
    ({"num_codes": 0}, {}, "model.num_codes"),
    ({"codebook_decay": 1.0}, {}, "model.codebook_decay"),
    ({"kind": "vq_prior", "code_prior_width": 30, "code_prior_heads": 4}, {}, "divisible"),
    ({"kind": "vq_prior"}, {}, "model.first_stage_workdir"),
    ({"latent_dim": 8}, {}, "unknown config key 'model.latent_dim'"),  # now model.code_dim
    ({"codebook_chunk_size": 48}, {}, "model.codebook_chunk_size"),
])
def test_bad_vq_configs_name_the_key(model, train, message):
  config = _vq(**model)
  config.train.update(train)
  with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
    config_lib.validate(config)


def test_a_loss_codebook_without_init_and_restarts_is_valid():
  config_lib.validate(_vq(codebook_update="loss", codebook_init="random",
                          restart_dead_codes=False))


def test_gradient_accumulation_is_valid_for_vq_models():
  """The codebook state threads through the micro-batches (tests/vq/test_vq_model.py trains it)."""
  config = _vq()
  config.train.accumulate_steps = 2
  config_lib.validate(config)


def test_first_stage_must_be_a_trained_vqvae_on_the_same_data(tmp_path, tfds_dir):
  workdir = str(tmp_path / "run")
  os.makedirs(workdir)
  vae = config_lib.get_config("smoke")
  vae.data.data_dir = tfds_dir
  config_lib.save_config(vae, os.path.join(workdir, "config.json"))
  _save_initial_checkpoint(vae, workdir)
  with pytest.raises(UserError, match="'vqvae' run"):
    _load_first_stage(workdir, (8, 8, 1))
  workdir = str(tmp_path / "vq")
  os.makedirs(workdir)
  vq = _vq()
  vq.data.data_dir = tfds_dir
  config_lib.save_config(vq, os.path.join(workdir, "config.json"))
  with pytest.raises(UserError, match="no checkpoint"):
    _load_first_stage(workdir, (8, 8, 1))
  _save_initial_checkpoint(vq, workdir)
  with pytest.raises(UserError, match=r"shape \(8, 8, 1\), these are \(16, 16, 1\)"):
    _load_first_stage(workdir, (16, 16, 1))
  assert _load_first_stage(workdir, (8, 8, 1)).data_shape == (8, 8, 1)
  with pytest.raises(UserError, match="cannot read the run's config"):
    _load_first_stage(str(tmp_path / "missing"), (8, 8, 1))
