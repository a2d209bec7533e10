"""A tfds dataset whose download host cannot be reached fails in seconds, with one clear error,
and leaves no half-made dataset folder behind. The host is a closed port on this machine."""

import os
import time

import pytest
import tensorflow_datasets as tfds

from jaxvae import config as config_lib
from jaxvae import data
from jaxvae.errors import UserError


class UnreachableDigits(tfds.core.GeneratorBasedBuilder):
  """A builder whose data lie on a host that refuses connections."""

  VERSION = tfds.core.Version("1.0.0")

  def _info(self):
    return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
        "image": tfds.features.Tensor(shape=(8, 8, 1), dtype="uint8")}))

  def _split_generators(self, dl_manager):
    dl_manager.download("http://127.0.0.1:9/digits.npz")  # port 9: nothing listens
    return {}

  def _generate_examples(self):
    yield from ()


def test_an_unreachable_download_fails_fast_and_leaves_nothing(tmp_path):
  config = config_lib.get_config()
  config.data.source, config.data.name = "tfds", "unreachable_digits"
  config.data.data_dir = str(tmp_path)
  start = time.perf_counter()
  with pytest.raises(UserError, match="could not prepare tfds dataset 'unreachable_digits'"):
    data.load_split(config.data, "train")
  assert time.perf_counter() - start < 30  # tfds's own retries alone took about 200 s
  leftovers = [os.path.join(root, name) for root, dirs, files in os.walk(tmp_path)
               for name in dirs + files]
  assert not any("unreachable_digits" in p or p.endswith("downloads") for p in leftovers), leftovers
