"""Bad VQ-VAE and code-prior configs: one clear `UserError` naming the key and the fix."""

import os

import pytest

from jaxvae import config as config_lib
from jaxvae.errors import UserError
from jaxvae.models.code_prior import load_first_stage


def _vq(**model):
  config = config_lib.get_config()
  config.model.kind = "vqvae"
  config.model.update(model)
  return config


@pytest.mark.parametrize("model, train, message", [
    ({"codebook_update": "loss"}, {}, "codebook_update='loss'"),
    ({"codebook_update": "adam"}, {}, "model.codebook_update"),
    ({"codebook_init": "zeros"}, {}, "model.codebook_init"),
    ({"num_codes": 0}, {}, "model.num_codes"),
    ({"codebook_decay": 1.0}, {}, "model.codebook_decay"),
    ({"code_prior_width": 30, "code_prior_heads": 4}, {}, "divisible"),
    ({}, {"accumulate_steps": 2}, "train.accumulate_steps=1"),
    ({"kind": "vq_prior"}, {}, "model.first_stage_workdir"),
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


def test_first_stage_must_be_a_trained_vqvae_on_the_same_data(tmp_path, tfds_dir):
  workdir = str(tmp_path / "run")
  os.makedirs(workdir)
  vae = config_lib.get_config()
  vae.data.data_dir = tfds_dir
  config_lib.save_config(vae, os.path.join(workdir, "config.json"))
  with pytest.raises(UserError, match="'vqvae' run"):
    load_first_stage(workdir, (8, 8, 1))
  vq = _vq()
  vq.data.data_dir = tfds_dir
  config_lib.save_config(vq, os.path.join(workdir, "config.json"))
  with pytest.raises(UserError, match=r"shape \(8, 8, 1\), these are \(16, 16, 1\)"):
    load_first_stage(workdir, (16, 16, 1))
  with pytest.raises(UserError, match="no checkpoint"):
    load_first_stage(workdir, (8, 8, 1))
  with pytest.raises(UserError, match="cannot read the run's config"):
    load_first_stage(str(tmp_path / "missing"), (8, 8, 1))
