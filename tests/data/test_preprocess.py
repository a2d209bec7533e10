"""Preprocessing (bits, dequantization, scaling, crop and resize) and the image-folder source."""

import numpy as np
import pytest
from PIL import Image

from jaxvae import data
from jaxvae.errors import UserError


@pytest.fixture
def npz_config(tmp_path, smoke_config):
  """8-bit 8x8 RGB images v[i, h, w, c] = (37 i + 11 h + 5 w + 3 c) mod 256, 40 train, 20 test."""
  i, h, w, c = np.meshgrid(np.arange(40), np.arange(8), np.arange(8), np.arange(3), indexing="ij")
  images = ((37 * i + 11 * h + 5 * w + 3 * c) % 256).astype(np.uint8)
  np.savez(tmp_path / "d.npz", train=images, test=images[:20])
  smoke_config.data.source, smoke_config.data.path = "npz", str(tmp_path / "d.npz")
  smoke_config.data.binarize = "none"
  smoke_config.train.batch_size = 8
  return smoke_config, images


def _eval_images(config):
  split = data.load_split(config.data, "test")
  return np.concatenate([b["image"][b["mask"]] for b in data.eval_batches(config, split, 8)])


def test_num_bits_reduces_levels(npz_config):
  config, images = npz_config
  config.data.num_bits = 3
  expected = np.floor(images[:20] / 32.0) / 7.0  # 8 levels, 0..7, scaled by the top level
  np.testing.assert_allclose(_eval_images(config), expected, atol=1e-6)


def test_unit_and_symmetric_scaling(npz_config):
  config, images = npz_config
  np.testing.assert_allclose(_eval_images(config), images[:20] / 255.0, atol=1e-6)
  config.data.scale = "symmetric"
  np.testing.assert_allclose(_eval_images(config), images[:20] / 127.5 - 1, atol=1e-6)


def test_dequantization_stays_in_the_bin_and_redraws_in_training(npz_config):
  config, images = npz_config
  config.data.dequantize = True
  x = _eval_images(config)
  np.testing.assert_array_equal(np.floor(x * 256), images[:20])  # (v + u) / 256 stays in bin v
  u = (x * 256 - images[:20]).ravel()
  assert abs(u.mean() - 0.5) < 0.02 and abs(u.var() - 1 / 12) < 0.01  # U[0, 1)
  np.testing.assert_array_equal(_eval_images(config), x)  # evaluation draws are fixed
  batches = data.train_batches(config, data.load_split(config.data, "train"))
  first_epoch = np.sort(np.concatenate([batches[s]["image"] for s in range(5)]).ravel())
  second_epoch = np.sort(np.concatenate([batches[s]["image"] for s in range(5, 10)]).ravel())
  np.testing.assert_array_equal(np.floor(first_epoch * 256), np.floor(second_epoch * 256))
  assert not np.array_equal(first_epoch, second_epoch)  # same pixels, fresh noise


def test_center_crop_and_resize_against_block_means(npz_config):
  config, images = npz_config
  config.data.crop = 4
  np.testing.assert_allclose(_eval_images(config), images[:20, 2:6, 2:6] / 255.0, atol=1e-6)
  config.data.crop, config.data.resize = 0, 4
  split = data.load_split(config.data, "test")
  assert split.image_shape == (4, 4, 3)
  block_means = images[:20].reshape(20, 4, 2, 4, 2, 3).astype(np.float64).mean(axis=(2, 4))
  np.testing.assert_allclose(_eval_images(config) * 255, np.rint(block_means), atol=1e-4)
  config.data.resize = 3  # 8 -> 3: output pixel 0 covers input pixels 0, 1 and 2/3 of pixel 2
  w = np.array([1, 1, 2 / 3]) / (8 / 3)
  expected = np.einsum("h,w,hw->", w, w, images[0, :3, :3, 0].astype(np.float64))
  assert _eval_images(config)[0, 0, 0, 0] * 255 == pytest.approx(np.rint(expected), abs=1e-4)


def test_bad_preprocessing_configs(npz_config):
  config, _ = npz_config
  config.data.crop = 9
  with pytest.raises(UserError, match="data.crop=9 is larger than the images"):
    data.load_split(config.data, "test")
  config.data.crop, config.data.num_bits, config.data.source = 0, 4, "embedded"
  with pytest.raises(UserError, match="needs 8-bit data"):
    _eval_images(config)


def _write(path, array):
  path.parent.mkdir(parents=True, exist_ok=True)
  Image.fromarray(array).save(path)


def test_image_folder_with_classes(tmp_path, smoke_config):
  rng = np.random.default_rng(0)
  written = {}
  for label, name in enumerate(["cat", "dog"]):
    for k in range(3):
      image = rng.integers(0, 256, (6, 5, 3), dtype=np.uint8)
      _write(tmp_path / "train" / name / f"{k}.png", image)
      written[(label, k)] = image
  smoke_config.data.source, smoke_config.data.path = "folder", str(tmp_path)
  split = data.load_split(smoke_config.data, "train")
  assert split.image_shape == (6, 5, 3) and split.max_value == 255 and len(split.source) == 6
  for index in range(6):
    element = split.source[index]
    np.testing.assert_array_equal(element["image"], written[(element["label"], index % 3)])
  with pytest.raises(UserError, match="has no folder 'test'"):
    data.load_split(smoke_config.data, "test")


def test_image_folder_errors_name_the_file(tmp_path, smoke_config):
  _write(tmp_path / "train" / "a.png", np.zeros((4, 4), np.uint8))
  _write(tmp_path / "train" / "b.png", np.zeros((5, 4), np.uint8))
  (tmp_path / "train" / "c.png").write_bytes(b"not a png")
  smoke_config.data.source, smoke_config.data.path = "folder", str(tmp_path)
  split = data.load_split(smoke_config.data, "train")
  assert split.image_shape == (4, 4, 1)
  with pytest.raises(UserError, match="b.png has shape \\(5, 4, 1\\)"):
    split.source[1]
  with pytest.raises(UserError, match="cannot read image .*c.png"):
    split.source[2]
  smoke_config.data.resize = 4  # makes the sizes equal; the unreadable file still fails
  split = data.load_split(smoke_config.data, "train")
  assert split.source[1]["image"].shape == (4, 4, 1)
  smoke_config.train.batch_size = 3
  with pytest.raises(UserError, match="c.png"):
    next(data.iterate_from(data.train_batches(smoke_config, split), 0, num_threads=2))


def test_counter_based_uniforms_are_uniform_independent_and_batch_free():
  from jaxvae.data import preprocess

  keys = preprocess.example_keys(seed=3, streams=7, ids=np.arange(20_000))
  u = preprocess.uniforms(keys, (4, 4)).reshape(20_000, 16).astype(np.float64)
  counts = np.histogram(u, bins=20, range=(0, 1))[0]
  expected = u.size / 20
  chi2 = np.sum((counts - expected) ** 2 / expected)
  assert chi2 < 43.8  # the chi-square(19) 0.999 quantile
  for a, b in ((u[:, 0], u[:, 1]), (u[:-1, 5], u[1:, 5])):  # neighbouring pixels, examples
    assert abs(np.corrcoef(a, b)[0, 1]) < 4 / np.sqrt(len(a))
  alone = preprocess.uniforms(preprocess.example_keys(3, 7, np.array([12_345])), (4, 4))
  np.testing.assert_array_equal(alone.reshape(16), u[12_345])
  other_stream = preprocess.uniforms(preprocess.example_keys(3, 8, np.arange(20_000)), (16,))
  assert abs(np.corrcoef(u[:, 0], other_stream[:, 0])[0, 1]) < 4 / np.sqrt(20_000)


def test_binarization_frequency_matches_the_pixel_intensity(smoke_config):
  split = data.load_split(smoke_config.data, "train")
  batches = data.train_batches(smoke_config, split)
  smoke_config.data.binarize = "none"
  gray = data.train_batches(smoke_config, split)
  binary = np.concatenate([batches[s]["image"] for s in range(400)]).ravel()
  probability = np.concatenate([gray[s]["image"] for s in range(400)]).ravel()
  for level in (0.25, 0.5, 0.75):  # pixels of gray level 4, 8 and 12 out of 16
    hits = binary[np.isclose(probability, level)]
    assert abs(hits.mean() - level) < 4 * np.sqrt(level * (1 - level) / hits.size), level
  assert binary[probability == 0].max() == 0 and binary[probability == 1].min() == 1
