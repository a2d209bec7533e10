"""`[N, D]` npz vectors (how MNIST often ships): trained as vectors with a one-line notice that no
image grids are drawn, or read as images with `data.image_shape`."""

import os

import numpy as np
import pytest

from jaxvae import config as config_lib
from jaxvae import data
from jaxvae.errors import UserError
from jaxvae.train import train_and_evaluate


@pytest.fixture
def vectors(tmp_path):
  rng = np.random.default_rng(0)
  images = rng.integers(0, 256, (48, 8, 8, 1), dtype=np.uint8)
  path = str(tmp_path / "vectors.npz")
  np.savez(path, train=images.reshape(48, 64), test=images[:16].reshape(16, 64))
  return path, images


def _config(path):
  config = config_lib.get_config("smoke")
  config.data.source, config.data.path = "npz", path
  config.train.progress_bar = False
  config.eval.after_training = False
  return config


def test_vectors_read_as_images_with_image_shape(vectors):
  path, images = vectors
  config = _config(path)
  config.data.image_shape = (8, 8, 1)
  split = data.load_split(config.data, "train")
  assert split.image_shape == (8, 8, 1)
  np.testing.assert_array_equal(split.source.read(np.arange(48))["image"], images)
  config.data.image_shape = (4, 4, 1)
  with pytest.raises(UserError, match="16 values per example"):
    data.load_split(config.data, "train")
  config.data.image_shape = (8, 8)
  with pytest.raises(UserError, match="must be \\(\\) or \\(H, W, C\\)"):
    config_lib.validate(config)


def test_training_on_vectors_says_why_it_draws_no_grids(vectors, tmp_path, capsys):
  path, _ = vectors
  train_and_evaluate(_config(path), str(tmp_path / "flat"))
  assert "No image grids: the data are vectors of shape (64,)" in capsys.readouterr().out
  assert not os.path.exists(tmp_path / "flat" / "images")
  config = _config(path)
  config.data.image_shape = (8, 8, 1)
  train_and_evaluate(config, str(tmp_path / "shaped"))
  assert os.listdir(tmp_path / "shaped" / "images")
