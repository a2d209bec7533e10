"""The embedded digits builder, the npz and tfds sources, and the grain pipeline."""

import gzip
import importlib.resources

import numpy as np
import pytest
import tensorflow_datasets as tfds

from jaxvae import data
from jaxvae.errors import UserError


def test_embedded_digits_is_a_tfds_arrayrecord_dataset(smoke_config, tfds_dir):
  train = data.load_split(smoke_config.data, "train")
  test = data.load_split(smoke_config.data, "test")
  assert (len(train.source), len(test.source)) == (1497, 300)
  assert train.max_value == 16 and train.image_shape == (8, 8, 1)
  builder = tfds.builder_from_directory(f"{tfds_dir}/embedded_digits/1.0.0")
  assert builder.info.splits["train"].num_examples == 1497
  assert builder.info.file_format.value == "array_record"
  with importlib.resources.files("jaxvae.data").joinpath("digits.csv.gz").open("rb") as f:
    table = np.loadtxt(gzip.open(f), delimiter=",", dtype=np.int64)
  rows = {tuple(r[:64]) + (r[64],) for r in table[1497:]}
  got = {tuple(e["image"].ravel()) + (e["label"],) for e in (test.source[i] for i in range(300))}
  assert got == rows  # the test split is exactly the last 300 rows


def test_train_batches_are_a_function_of_seed_and_step(smoke_config):
  split = data.load_split(smoke_config.data, "train")
  batches = data.train_batches(smoke_config, split)
  first = [batches[s] for s in range(3)]
  resumed = data.iterate_from(data.train_batches(smoke_config, split), 1, num_threads=2)
  np.testing.assert_array_equal(next(resumed)["image"], first[1]["image"])
  np.testing.assert_array_equal(next(resumed)["label"], first[2]["label"])
  assert first[0]["image"].shape == (16, 8, 8, 1)
  assert set(np.unique(first[0]["image"])) <= {0.0, 1.0}  # dynamically binarized
  smoke_config.seed = 1
  assert not np.array_equal(data.train_batches(smoke_config, split)[0]["label"], first[0]["label"])


@pytest.mark.parametrize("mode, shared", [("dynamic", False), ("static", True)])
def test_dynamic_binarization_redraws_each_epoch_static_does_not(mode, shared, smoke_config):
  smoke_config.data.binarize = mode
  ds = data.train_batches(smoke_config, data.load_split(smoke_config.data, "train"))
  steps_per_epoch = 1497 // 16  # whole batches inside epoch 0 and inside epoch 1
  epochs = [{tuple(image.ravel()) for step in range(first + 1, first + steps_per_epoch - 1)
             for image in ds[step]["image"]} for first in (0, steps_per_epoch + 1)]
  overlap = len(epochs[0] & epochs[1]) / len(epochs[0])
  assert (overlap > 0.9) if shared else (overlap < 0.2), overlap


def test_no_binarization_keeps_gray_levels(smoke_config):
  smoke_config.data.binarize = "none"
  image = data.train_batches(smoke_config, data.load_split(smoke_config.data, "train"))[0]["image"]
  assert image.min() == 0.0 and image.max() == 1.0
  np.testing.assert_allclose(image * 16, np.round(image * 16), atol=1e-6)  # 17 levels


def test_eval_batches_cover_each_example_once(smoke_config):
  split = data.load_split(smoke_config.data, "test")
  batches = list(data.eval_batches(smoke_config, split, 64))
  ids = np.concatenate([b["id"][b["mask"]] for b in batches])
  np.testing.assert_array_equal(ids, np.arange(300))
  assert len(batches) == 5 and batches[-1]["mask"].sum() == 300 - 4 * 64
  again = list(data.eval_batches(smoke_config, split, 64))
  np.testing.assert_array_equal(batches[2]["image"], again[2]["image"])  # fixed binarization


def test_npz_source(tmp_path, smoke_config):
  path = tmp_path / "d.npz"
  rng = np.random.default_rng(0)
  np.savez(path, train=rng.integers(0, 256, (10, 4, 5), dtype=np.uint8),
           test=rng.random((6, 20)).astype(np.float32), train_labels=np.arange(10))
  smoke_config.data.source, smoke_config.data.path = "npz", str(path)
  train = data.load_split(smoke_config.data, "train")
  assert train.image_shape == (4, 5, 1) and train.max_value == 255 and train.source[3]["label"] == 3
  test = data.load_split(smoke_config.data, "test")
  assert test.image_shape == (20,) and test.max_value == 1.0 and test.source[0]["label"] == -1
  with pytest.raises(UserError, match=r"has no array 'valid' .*jaxvae eval --split\)"):
    data.load_split(smoke_config.data, "valid")
  np.savez(path, train=np.full((3, 2, 2), np.nan, np.float32))
  with pytest.raises(UserError, match="outside \\[0, 1\\]"):
    data.load_split(smoke_config.data, "train")


def test_tfds_by_name_through_the_same_path(smoke_config, tmp_path):
  smoke_config.data.source, smoke_config.data.name = "tfds", "mnist"
  smoke_config.data.data_dir = str(tmp_path)
  with tfds.testing.mock_data(num_examples=40):
    split = data.load_split(smoke_config.data, "train")
    batch = data.train_batches(smoke_config, split)[0]
  assert split.image_shape == (28, 28, 1) and split.max_value == 255
  assert batch["image"].shape == (16, 28, 28, 1) and batch["image"].dtype == np.float32


def test_prefetch_to_device_gives_sharded_global_batches_in_order(smoke_config):
  import jax
  from jax.sharding import NamedSharding, PartitionSpec

  mesh = jax.make_mesh((8,), ("data",))
  sharding = NamedSharding(mesh, PartitionSpec("data"))
  split = data.load_split(smoke_config.data, "train")
  batches = data.train_batches(smoke_config, split)
  prefetched = data.prefetch_to_device(data.iterate_from(batches, 0, 2), sharding, depth=3)
  for step in range(5):
    batch = next(prefetched)
    assert batch["image"].sharding == sharding and len(batch["image"].addressable_shards) == 8
    np.testing.assert_array_equal(np.asarray(batch["image"]), batches[step]["image"])
  finite = data.prefetch_to_device(iter([{"x": np.arange(8)}] * 2), sharding, depth=4)
  assert len(list(finite)) == 2


def test_uint8_zero_one_data_are_read_as_binary_with_one_line(tmp_path, smoke_config, capsys):
  path = tmp_path / "binary.npz"
  images = (np.random.default_rng(0).random((12, 4, 4)) < 0.5).astype(np.uint8)
  np.savez(path, train=images)
  smoke_config.data.source, smoke_config.data.path = "npz", str(path)
  smoke_config.data.binarize = "none"
  split = data.load_split(smoke_config.data, "train")
  out = capsys.readouterr().out
  assert out.count("\n") == 1 and "read as binary pixels {0, 1}" in out
  batch = next(data.eval_batches(smoke_config, split, 16))
  np.testing.assert_array_equal(batch["image"][:12, ..., 0], images)  # 1 stays 1, not 1/255.


@pytest.mark.parametrize("likelihood", ["discretized_logistic", "categorical256"])
def test_data_off_the_likelihoods_level_grid_are_refused(tmp_path, smoke_config, likelihood):
  path = tmp_path / "d.npz"
  rng = np.random.default_rng(0)
  on_grid = rng.integers(0, 32, (10, 4, 4)) / 31
  np.savez(path, on=on_grid.astype(np.float32), off=rng.random((10, 4, 4)).astype(np.float32),
           levels=rng.integers(0, 256, (10, 4, 4), dtype=np.uint8))
  smoke_config.data.source, smoke_config.data.path = "npz", str(path)
  smoke_config.data.binarize = "none"
  smoke_config.model.likelihood, smoke_config.model.num_bits = likelihood, 5
  assert data.load_split(smoke_config.data, "on", smoke_config.model).max_value == 1.0
  with pytest.raises(UserError, match=r"d\.npz:off holds values off the grid k / 31 of "
                                      rf"model\.likelihood='{likelihood}'"):
    data.load_split(smoke_config.data, "off", smoke_config.model)
  with pytest.raises(UserError, match=r"has 256 levels .* set data\.num_bits=5"):
    data.load_split(smoke_config.data, "levels", smoke_config.model)
  smoke_config.data.num_bits = 5  # 8-bit data reduced to the likelihood's 32 levels.
  assert data.load_split(smoke_config.data, "levels", smoke_config.model).max_value == 255
  smoke_config.data.dequantize = True
  with pytest.raises(UserError, match="set data.dequantize=False"):
    data.load_split(smoke_config.data, "levels", smoke_config.model)


def test_digits_seventeen_levels_are_refused_by_a_256_level_likelihood(smoke_config):
  smoke_config.data.binarize = "none"
  smoke_config.model.likelihood = "categorical256"
  with pytest.raises(UserError, match=r"has 17 levels \(x = v / 16\)"):
    data.load_split(smoke_config.data, "test", smoke_config.model)
