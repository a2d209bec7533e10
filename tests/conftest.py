"""Test setup: 8 forced CPU devices (set before JAX is imported) and a private tfds data dir."""

import os

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
