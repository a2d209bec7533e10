"""One input pipeline for every source: a random-access source, grain, and global `jax.Array` batches.

Batches are dicts `{"image": float32 [b, H, W, C], "label": int32 [b]}` (label -1 if none).
Training batches are a `grain.MapDataset` indexed by step, so the batch of step `s` is a pure
function of (seed, s): resuming at step `s` sees exactly the batches an uninterrupted run would, on
any number of hosts, and no iterator state needs saving. Global batch `s` holds the examples at
positions `[s B, (s + 1) B)` of the concatenated epochs, each epoch a permutation seeded by
(seed, epoch); process `p` of `P` reads only rows `[p B / P, (p + 1) B / P)`. Reading and
preprocessing work on whole batches (vectorized NumPy), in grain's prefetching threads.
"""

import collections
import dataclasses
import functools
import itertools
import math
import os
import shutil
from collections.abc import Iterator
from typing import Protocol

import grain
import jax
import ml_collections
import numpy as np
from etils import epath

from jaxvae.data import preprocess
from jaxvae.data.folder import ImageFolder, read_per_example
from jaxvae.errors import UserError

# Random streams of the per-example draws (see `preprocess`): training's per-visit draws use the
# epoch as their stream; fixed draws use these, different for training and evaluation.
_TRAIN_FIXED_STREAM = 2**40
_EVAL_STREAM = 2**40 + 1
_IN_MEMORY = 1 << 30  # tfds splits up to this many bytes are held in memory as arrays.
_MAX_STEPS = 1 << 40  # Training batches are indexed by step, without end.


class Source(Protocol):
  """Random access to a split: `source[i]` is `{'image': [H, W, C] raw array, 'label': int}` and
  `source.read(indices [n])` is the same for many examples, stacked: `{'image': [n, H, W, C],
  'label': [n]}`."""

  def __len__(self) -> int: ...
  def __getitem__(self, index: int) -> dict: ...
  def read(self, indices: np.ndarray) -> dict: ...


@dataclasses.dataclass(frozen=True)
class Split:
  """A split: its source, the raw value that maps to 1.0, and the shape of one example."""

  source: Source
  max_value: float
  image_shape: tuple[int, ...]


class ArraySource:
  """In-memory arrays `images [N, ...]` and `labels [N]`; `read` is one fancy-indexing gather."""

  def __init__(self, images: np.ndarray, labels: np.ndarray):
    self._images, self._labels = images, labels

  def __len__(self) -> int:
    return len(self._images)

  def __getitem__(self, index: int) -> dict:
    return {"image": self._images[index], "label": self._labels[index]}

  def read(self, indices: np.ndarray) -> dict:
    return {"image": self._images[indices], "label": self._labels[indices]}


class _TfdsSource:
  """A tfds ArrayRecord data source (labels -1 if it has none)."""

  def __init__(self, source):
    self._source = source

  def __len__(self) -> int:
    return len(self._source)

  def __getitem__(self, index: int) -> dict:
    element = self._source[index]
    return {"image": element["image"], "label": element.get("label", -1)}

  def read(self, indices: np.ndarray) -> dict:
    return read_per_example(self, indices)


def _first_line(error: Exception, limit: int = 160) -> str:
  line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
  return line if len(line) <= limit else line[:limit] + "..."


# tfds retries a failed download 10 times with exponential backoff (about 200 s when the host cannot
# be reached at all); 3 tries give up in about 1.4 s. The name is tfds's module constant.
_DOWNLOAD_TRIES = 3


def _download_and_prepare(builder) -> None:
  """Prepares `builder` as ArrayRecord; on failure, removes the folders the attempt made (the
  dataset's, and tfds's downloads folder), so a later run sees no half-made dataset."""
  from tensorflow_datasets.core.download import downloader

  root = epath.Path(builder.data_dir_root)
  folder = epath.Path(builder.data_dir)
  made = [p for p in [folder, *folder.parents] if p != root and root in p.parents]
  made = [p for p in made + [root / "downloads"] if not p.exists()]  # deepest first
  tries, downloader.MAX_RETRIES = downloader.MAX_RETRIES, _DOWNLOAD_TRIES
  try:
    builder.download_and_prepare(file_format="array_record")
  except BaseException:
    for path in made:
      shutil.rmtree(path, ignore_errors=True)
    raise
  finally:
    downloader.MAX_RETRIES = tries


def _tfds_split(builder, split: str, data_dir: str | None, download: bool) -> Split:
  """A split of a tfds builder (or dataset name), prepared as ArrayRecord, read as a data source."""
  import tensorflow_datasets as tfds  # Imported on use: it is slow to import.

  tfds.disable_progress_bar()
  try:
    if isinstance(builder, str):
      builder = tfds.builder(builder, data_dir=data_dir)
    if not download and not builder.is_prepared():
      raise UserError(f"tfds dataset {builder.name!r} is not prepared in {builder.data_dir} and "
                      f"data.download is False; prepare it once with network access, copy it "
                      f"there, or set data.data_dir")
    if download and not builder.is_prepared():
      _download_and_prepare(builder)
    source = builder.as_data_source(split=split)
  except (tfds.core.registered.DatasetNotFoundError, KeyError, ValueError) as e:
    raise UserError(f"tfds dataset {getattr(builder, 'name', builder)!r}, split {split!r}: "
                    f"{_first_line(e)}; check data.name and the split's name (data.train_split, "
                    f"data.eval_split or jaxvae eval --split)") from None
  except UserError:
    raise
  except Exception as e:  # Download and preparation errors come in many types.
    raise UserError(f"could not prepare tfds dataset {getattr(builder, 'name', builder)!r} in "
                    f"{data_dir or tfds.core.constants.DATA_DIR} ({type(e).__name__}: "
                    f"{_first_line(e)}); prepare it once on a machine with network access, copy "
                    f"it there, and set data.data_dir") from None
  features = builder.info.features
  if "image" not in features:
    raise UserError(f"tfds dataset {builder.name!r} has no 'image' feature; jaxvae models images")
  shape = tuple(features["image"].shape)
  if any(d is None for d in shape):
    raise UserError(f"tfds dataset {builder.name!r} has images of varying shape {shape}")
  max_value = builder.info.metadata.get("max_value", 255) if builder.info.metadata else 255
  tfds_source = _TfdsSource(source)
  if len(tfds_source) * np.prod(shape) * np.dtype(features["image"].np_dtype).itemsize <= _IN_MEMORY:
    tfds_source = ArraySource(**{k + "s": v for k, v in tfds_source.read(
        np.arange(len(tfds_source))).items()})  # Small splits are read once, then gathered.
  return Split(tfds_source, float(max_value), shape)


def _npz_split(path: str, split: str, image_shape: tuple[int, ...] = ()) -> Split:
  if not os.path.isfile(path):
    raise UserError(f"data.path {path!r} is not a file; point it at a .npz with one array per split")
  try:
    arrays = np.load(path)
  except Exception as e:
    raise UserError(f"data.path {path!r} is not a readable .npz file ({e})") from None
  if split not in arrays:
    raise UserError(f"{path} has no array {split!r} (it has {', '.join(arrays.files) or 'none'}); "
                    f"add it, or name a split it has (data.train_split, data.eval_split or "
                    f"jaxvae eval --split)")
  images = arrays[split]
  if images.ndim == 3:
    images = images[..., None]
  if image_shape:  # Vectors [N, D] (how MNIST often ships) read as images [N, H, W, C].
    if images.ndim != 2 or images.shape[1] != math.prod(image_shape):
      raise UserError(f"data.image_shape={tuple(image_shape)} has {math.prod(image_shape)} "
                      f"values per example, but {path}:{split} has shape {images.shape}; give "
                      f"[N, D] vectors with D = H * W * C, or data.image_shape=()")
    images = images.reshape((len(images),) + tuple(image_shape))
  if images.ndim not in (2, 4) or images.size == 0:
    raise UserError(f"{path}:{split} has shape {arrays[split].shape}; expected a non-empty "
                    f"[N, H, W, C], [N, H, W] or [N, D] array")
  if images.dtype == np.uint8:
    max_value = 1.0 if images.max() == 1 else 255.0  # 0/1 data: binary pixels, not levels of 255.
    if max_value == 1.0 and jax.process_index() == 0:
      print(f"{path}:{split} holds only 0 and 1 (uint8): read as binary pixels {{0, 1}}; to read "
            f"them as levels of 0-255, store them as floats v / 255", flush=True)
  elif np.issubdtype(images.dtype, np.floating):
    if not np.all(np.isfinite(images)) or images.min() < 0 or images.max() > 1:
      raise UserError(f"{path}:{split} holds floats outside [0, 1] (or NaN); scale them to [0, 1]")
    max_value = 1.0
  else:
    raise UserError(f"{path}:{split} has dtype {images.dtype}; use uint8 or float in [0, 1]")
  labels_key = f"{split}_labels"
  labels = arrays[labels_key] if labels_key in arrays else np.full(len(images), -1)
  if labels.shape != (len(images),):
    raise UserError(f"{path}:{labels_key} has shape {labels.shape}; expected ({len(images)},)")
  return Split(ArraySource(images, labels.astype(np.int64)), max_value, images.shape[1:])


class _Cropped:
  """A source whose images are center-cropped and resized (`preprocess.crop_and_resize`)."""

  def __init__(self, source, crop: int, resize: int):
    self._source, self._crop, self._resize = source, crop, resize

  def __len__(self) -> int:
    return len(self._source)

  def __getitem__(self, index: int) -> dict:
    element = self._source[index]
    image = preprocess.crop_and_resize(element["image"], self._crop, self._resize)
    return {**element, "image": image}

  def read(self, indices: np.ndarray) -> dict:
    return read_per_example(self, indices)


def load_split(data: ml_collections.ConfigDict, split: str,
               model: ml_collections.ConfigDict | None = None) -> Split:
  """The split `split` of the dataset named by the `data` section of a config; given the `model`
  section too, it refuses data that its likelihood cannot model (`check_levels`)."""
  loaded = _load_source(data, split)
  if model is not None:
    check_levels(loaded, data, model, split)
  if not (data.crop or data.resize):
    return loaded
  shape = loaded.image_shape
  if len(shape) != 3:
    raise UserError(f"data.crop / data.resize need [H, W, C] images; this split has shape {shape}")
  if data.crop > min(shape[:2]):
    raise UserError(f"data.crop={data.crop} is larger than the images ({shape[0]}x{shape[1]})")
  side = data.resize or data.crop
  return Split(_Cropped(loaded.source, data.crop, data.resize), loaded.max_value,
               (side, side, shape[2]))


_DISCRETE_LIKELIHOODS = ("discretized_logistic", "categorical256")


def check_levels(loaded: Split, data: ml_collections.ConfigDict, model: ml_collections.ConfigDict,
                 split: str, block: int = 4096) -> None:
  """Raises `UserError` unless the split's pixels lie on the `2^model.num_bits` levels
  `k / (2^num_bits - 1)` that `model.likelihood` `discretized_logistic` or `categorical256` models
  (other likelihoods: no check). Integer sources are checked by their number of levels, float ones
  value by value."""
  if model.get("likelihood") not in _DISCRETE_LIKELIHOODS or data.binarize != "none":
    return
  grid = 2**model.num_bits - 1
  name = f"{data.path or data.name}:{split}"
  likelihood = f"model.likelihood={model.likelihood!r} with model.num_bits={model.num_bits}"
  if data.dequantize:
    raise UserError(f"data.dequantize adds continuous noise, but {likelihood} models the "
                    f"{grid + 1} discrete levels themselves; set data.dequantize=False")
  if np.issubdtype(loaded.source.read(np.arange(1))["image"].dtype, np.integer):
    top = preprocess.Options.from_config(data, loaded.max_value).top
    if grid % top:
      fix = (f"set data.num_bits={model.num_bits}" if top == 255 else
             "use model.likelihood='gaussian' or 'bernoulli'")
      raise UserError(f"{name} has {top + 1:g} levels (x = v / {top:g}), which are not among the "
                      f"{grid + 1} levels of {likelihood}; {fix}")
    return
  for start in range(0, len(loaded.source), block):
    x = loaded.source.read(np.arange(start, min(start + block, len(loaded.source))))["image"]
    scaled = np.asarray(x, np.float64) * grid
    off = np.abs(scaled - np.rint(scaled)) > 1e-3
    if off.any():
      raise UserError(f"{name} holds values off the grid k / {grid} of {likelihood}, e.g. "
                      f"{x[off][0]:.6g}; round them (np.round(x * {grid}) / {grid}) or use "
                      f"model.likelihood='gaussian'")


def _load_source(data: ml_collections.ConfigDict, split: str) -> Split:
  data_dir = data.data_dir or None
  if data.source == "embedded":
    if data.name != "digits":
      raise UserError(f"data.name {data.name!r}: the only embedded dataset is 'digits'")
    from jaxvae.data.digits import EmbeddedDigits

    return _tfds_split(EmbeddedDigits(data_dir=data_dir, file_format="array_record"), split,
                       data_dir, download=True)
  if data.source == "tfds":
    return _tfds_split(data.name, split, data_dir, download=data.download)
  if data.source == "toy":
    from jaxvae.data.toy import toy_arrays

    if split not in ("train", "test"):
      raise UserError(f"the toy data has splits 'train' and 'test', not {split!r}")
    x, component = toy_arrays(split)
    return Split(ArraySource(x, component), 1.0, (1,))
  if data.source == "folder":
    folder = ImageFolder(data.path, split, same_shape=not (data.crop or data.resize))
    return Split(folder, 255.0, folder.shape)
  return _npz_split(data.path, split, tuple(data.image_shape))


def mean_image(data: ml_collections.ConfigDict, split: Split, block: int = 4096) -> np.ndarray:
  """The mean over `split` of its preprocessed images before any random draw, `[*image_shape]`
  float64: under binarization, each pixel's probability of being 1."""
  options = dataclasses.replace(preprocess.Options.from_config(data, split.max_value),
                                binarize=False, dequantize=False)
  total = np.zeros(split.image_shape, np.float64)
  for start in range(0, len(split.source), block):
    indices = np.arange(start, min(start + block, len(split.source)))
    total += options.process(split.source.read(indices)["image"], None).sum(0, dtype=np.float64)
  return total / len(split.source)


class _Epochs:
  """Position -> example index over concatenated epochs, each a permutation seeded by (seed, epoch)."""

  def __init__(self, num_examples: int, seed: int):
    self._num, self._seed = num_examples, seed
    self._permutation = functools.lru_cache(maxsize=4)(
        lambda epoch: np.random.default_rng((seed, epoch)).permutation(num_examples))

  def examples(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`(example index [n], epoch [n])` of `positions [n]`."""
    epochs, offsets = np.divmod(positions, self._num)
    indices = np.empty_like(positions)
    for epoch in np.unique(epochs):
      where = epochs == epoch
      indices[where] = self._permutation(int(epoch))[offsets[where]]
    return indices, epochs


def _processed(split: Split, options: preprocess.Options, seed: int, indices: np.ndarray,
               streams: np.ndarray | int) -> dict:
  """Reads examples `indices [n]` and preprocesses them, drawing from `streams` (per example)."""
  raw = split.source.read(indices)
  keys = preprocess.example_keys(seed, streams, indices) if options.needs_draw else None
  return {"image": options.process(raw["image"], keys), "label": raw["label"].astype(np.int32)}


def train_batches(config: ml_collections.ConfigDict, split: Split) -> grain.MapDataset:
  """This process's local batches, indexed by step: `[B / P, H, W, C]` images and `[B / P]` labels.

  Every epoch is reshuffled; per-visit draws (dynamic binarization, dequantization) use the epoch
  as their random stream, so they change from one epoch to the next. Preprocessing:
  `jaxvae.data.preprocess`.
  """
  global_batch, processes = config.train.batch_size, jax.process_count()
  if global_batch % processes:
    raise UserError(f"train.batch_size={global_batch} must be divisible by the number of "
                    f"processes ({processes})")
  local = global_batch // processes
  epochs = _Epochs(len(split.source), config.seed)
  rows = jax.process_index() * local + np.arange(local)
  fixed = config.data.binarize == "static"
  options, seed = preprocess.Options.from_config(config.data, split.max_value), config.seed

  def batch(step: int) -> dict:
    indices, epoch = epochs.examples(step * global_batch + rows)
    return _processed(split, options, seed, indices, _TRAIN_FIXED_STREAM if fixed else epoch)

  return grain.MapDataset.range(_MAX_STEPS).map(batch)


def iterate_from(batches: grain.MapDataset, start_step: int, num_threads: int) -> Iterator[dict]:
  """Iterates `batches[start_step:]` with background prefetching threads."""
  options = grain.ReadOptions(num_threads=num_threads, prefetch_buffer_size=2 * num_threads)
  return iter(batches[start_step:].to_iter_dataset(options))


def prefetch_to_device(local_batches: Iterator[dict], sharding: jax.sharding.Sharding,
                       depth: int = 2) -> Iterator[dict]:
  """Global `jax.Array` batches from this process's local ones, `depth` transfers ahead.

  Each local batch `[b, ...]` becomes a global array `[b * P, ...]` with `sharding`
  (`jax.make_array_from_process_local_data`); transfers are started `depth` batches before they
  are needed, so they overlap the device's work on the current batch.
  """
  def to_device(local: dict) -> dict:
    return jax.tree.map(lambda a: jax.make_array_from_process_local_data(sharding, a), local)

  queue = collections.deque(to_device(b) for b in itertools.islice(local_batches, depth))
  while queue:
    yield queue.popleft()
    queue.extend(to_device(b) for b in itertools.islice(local_batches, 1))


def eval_batches(config: ml_collections.ConfigDict, split: Split,
                 batch_size: int) -> Iterator[dict]:
  """This process's part of each global eval batch, in dataset order, padded at the end.

  Yields `{'image': [b, H, W, C], 'label': [b], 'id': [b] int32, 'mask': [b] bool}` with
  `b = batch_size / P`; `id` is the example's index in the split (its key for random draws), and
  `mask` is False on padding. Binarization or dequantization, if any, is a fixed draw per example.
  """
  processes = jax.process_count()
  if batch_size % processes:
    raise UserError(f"eval.batch_size={batch_size} must be divisible by the number of "
                    f"processes ({processes})")
  local = batch_size // processes
  num = len(split.source)
  options = preprocess.Options.from_config(config.data, split.max_value)
  for start in range(0, num, batch_size):
    ids = start + jax.process_index() * local + np.arange(local)
    batch = _processed(split, options, config.seed, np.minimum(ids, num - 1), _EVAL_STREAM)
    yield {**batch, "id": ids.astype(np.int32), "mask": ids < num}
