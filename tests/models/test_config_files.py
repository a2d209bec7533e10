"""Every config file's smoke variant trains a few steps through the one trainer and is evaluated.

tensorflow-datasets configs read `tfds.testing.mock_data` (random images of the dataset's real
shape), so no test touches the network.
"""

import importlib.util
import json
import math
import pathlib

import pytest

from jaxvae.train import loop

CONFIGS = sorted((pathlib.Path(__file__).resolve().parents[2] / "configs").glob("*.py"))


def _load(path):
  spec = importlib.util.spec_from_file_location(path.stem, path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config("smoke")


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_smoke_variant_trains_and_evaluates(path, tfds_dir, tmp_path, monkeypatch):
  config = _load(path)
  config.data.data_dir = tfds_dir if config.data.source != "tfds" else str(tmp_path / "tfds")
  config.train.num_steps = 2
  config.train.log_every = 2
  config.train.checkpoint_every = 2
  if config.model.kind == "vq_prior":  # first the smoke run of the VQ-VAE it names (runs/NAME)
    first = _load(path.with_name(pathlib.Path(config.model.first_stage_workdir).name + ".py"))
    first.data.data_dir, first.train.num_steps = config.data.data_dir, 2
    loop.train_and_evaluate(first, str(tmp_path / "first"))
    config.model.first_stage_workdir = str(tmp_path / "first")
  if config.data.source == "toy":  # [N, 1] data are not images: no PNG grids.
    monkeypatch.setattr(loop, "_image_writer", lambda *args: (lambda params, step: None))
  if config.data.source == "tfds":
    import tensorflow_datasets as tfds

    config.eval.batch_size = 16  # the mock splits hold 16 examples

    with tfds.testing.mock_data(num_examples=16):
      record = loop.train_and_evaluate(config, str(tmp_path / "run"))
  else:
    record = loop.train_and_evaluate(config, str(tmp_path / "run"))
  assert record["step"] == 2 and math.isfinite(record["log_px"])
  if config.model.kind == "hvae":  # the trainer reports each layer's KL
    last = [json.loads(line) for line in open(tmp_path / "run" / "metrics.jsonl")][-1]
    assert all(math.isfinite(last[f"kl_layer_{i}"]) for i in range(len(config.model.latent_dims)))
