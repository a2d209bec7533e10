"""Test setup: 8 forced CPU devices (set before JAX is imported) and a private tfds data dir."""

import os
import sys

import chex

chex.set_n_cpu_devices(8)  # Through XLA_FLAGS, so the processes tests start get 8 devices too.
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def tfds_dir(tmp_path_factory) -> str:
  """A tfds data dir private to this test process (the embedded digits get prepared in it)."""
  return str(tmp_path_factory.mktemp("tensorflow_datasets"))


@pytest.fixture
def smoke_config(tfds_dir):
  """The default config's smoke variant, reading data from the private tfds dir."""
  from jaxvae.config import get_config

  config = get_config("smoke")
  config.data.data_dir = tfds_dir
  return config


@pytest.fixture
def long_trainer(tfds_dir):
  """`(command, env)` of `jaxvae train` of the smoke config on `workdir` for a million steps, one
  per call, logging every 5, saving every `checkpoint_every`: a trainer to signal or kill."""
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

  def make(workdir: str, checkpoint_every: int):
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=1",
               JAX_PLATFORMS="cpu", PYTHONPATH=root)
    command = [sys.executable, "-m", "jaxvae.cli", "train", f"--workdir={workdir}",
               "--config=" + os.path.join(root, "jaxvae", "config.py") + ":smoke",
               f"--config.data.data_dir={tfds_dir}", "--config.train.num_steps=1000000",
               f"--config.train.checkpoint_every={checkpoint_every}",
               "--config.train.log_every=5", "--config.train.steps_per_call=1"]
    return command, env

  return make


@pytest.fixture
def poison_batches(monkeypatch):
  """`poison(steps)`: the trainer's train batches of the given step indices (0-based) become NaN."""
  import numpy as np

  from jaxvae.train import loop

  original = loop.data_lib.train_batches

  def poison(steps):
    def poisoned(config, split):
      def nan_at(index, batch):
        if index in steps:
          return {**batch, "image": np.full_like(batch["image"], np.nan)}
        return batch
      return original(config, split).map_with_index(nan_at)

    monkeypatch.setattr(loop.data_lib, "train_batches", poisoned)

  return poison
