"""Every config file's smoke variant trains a few steps through the one trainer and is evaluated.

tensorflow-datasets configs read `tfds.testing.mock_data` (random images of the dataset's real
shape), so no test touches the network.
"""

import importlib.util
import json
import math
import pathlib

import jax
import jax.numpy as jnp
import pytest

from jaxvae import config as config_lib
from jaxvae.models import build_model
from jaxvae.train import loop
from jaxvae.train import state as state_lib

CONFIGS = sorted((pathlib.Path(__file__).resolve().parents[2] / "configs").glob("*.py"))


def _load(path):
  spec = importlib.util.spec_from_file_location(path.stem, path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config("smoke")


# Deep hierarchies whose smoke runs take minutes on this CPU (ffhq256's ~2 min and 7 GB) train
# the code of cifar10_vdvae's smoke run, which does train here; for these the smoke variant's train
# step is traced whole (`jax.eval_shape`), which checks every shape without compiling.
TRACED_ONLY = ("imagenet32_vdvae", "imagenet64_vdvae", "ffhq256_vdvae")


@pytest.mark.parametrize("path", [p for p in CONFIGS if p.stem in TRACED_ONLY],
                         ids=lambda p: p.stem)
def test_deep_smoke_variant_traces_a_train_step(path):
  config = _load(path)
  config_lib.validate(config)
  size = int(config.model.decoder_blocks.rsplit(",", 1)[1].split("m")[0].split("x")[0])
  shape = (size, size, 3)
  model = build_model(config.model, shape)
  optimizer, schedule = state_lib.make_optimizer(config.train)
  state = jax.eval_shape(lambda: state_lib.init_state(model, optimizer, shape, jax.random.key(0)))
  batch = {"image": jax.ShapeDtypeStruct((2,) + shape, jnp.float32)}
  step = state_lib.make_train_step(model, optimizer, schedule, config.train)
  new_state, metrics = jax.eval_shape(step, state, batch)
  assert jax.tree.map(lambda a: a.shape, new_state.params) == jax.tree.map(lambda a: a.shape,
                                                                           state.params)
  groups = config.model.decoder_blocks.count(",") + 1  # one block per token in smoke
  assert sorted(k for k in metrics if k.startswith("kl_layer_")) == sorted(
      f"kl_layer_{g}" for g in range(groups))


@pytest.mark.parametrize("path", [p for p in CONFIGS if p.stem not in TRACED_ONLY],
                         ids=lambda p: p.stem)
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
  if config.model.kind in ("hvae", "vdvae"):  # the trainer reports each layer's KL
    last = [json.loads(line) for line in open(tmp_path / "run" / "metrics.jsonl")][-1]
    layers = [key for key in last if key.startswith("kl_layer_")]
    assert layers and all(math.isfinite(last[key]) for key in layers)
    expected = (len(config.model.latent_dims) if config.model.kind == "hvae"
                else config.model.decoder_blocks.count(",") + 1)  # one block per token in smoke
    assert len(layers) == expected
