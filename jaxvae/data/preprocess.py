"""Preprocessing from the `data` section of a config, vectorized over a batch of examples.

The steps, in order:
1. `crop` / `resize` (in `load_split`): center crop to `crop x crop`, then resize to
   `resize x resize` by exact area averaging, rounded to integers; for image sources only.
2. `num_bits`: 8-bit data reduced to `2^num_bits` levels, `v <- floor(v / 2^(8 - num_bits))`
   (Kingma & Dhariwal, 2018); 0 keeps the source's levels (17 for the digits, 256 for uint8).
3. One draw per example, or none: `binarize` (x = [u < v / L], u ~ U[0, 1)^D, Salakhutdinov &
   Murray, 2008) or `dequantize` (x = (v + u) / (L + 1), Theis et al., 2016); otherwise x = v / L,
   with L the largest level.
4. `scale`: 'unit' keeps [0, 1]; 'symmetric' maps to [-1, 1] by x <- 2x - 1.

The uniforms u of an example come from a counter-based hash of (seed, stream, example id, pixel)
(`example_keys`, then `uniforms`: splitmix64 and murmur3's 32-bit finalizer), so they do not depend on the batch size, the order of reading or the number of
processes: in training the stream is the epoch for per-visit draws (dynamic binarization,
dequantization) and fixed for `binarize='static'`; evaluation always uses a fixed stream.
"""

import dataclasses

import ml_collections
import numpy as np

from jaxvae.errors import UserError

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _mix(x: np.ndarray) -> np.ndarray:
  """The splitmix64 finalizer (Steele et al., 2014): a bijective mixing of uint64 arrays."""
  x = x.astype(np.uint64)
  x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
  x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
  return x ^ (x >> np.uint64(31))


def example_keys(seed: int, streams: np.ndarray | int, ids: np.ndarray) -> np.ndarray:
  """`[n]` uint32 keys of examples `ids [n]` in random streams `streams` (`[n]` or one) of `seed`."""
  with np.errstate(over="ignore"):
    key = _mix(np.uint64(seed) * _GOLDEN + np.asarray(streams, np.uint64))
    return (_mix(key ^ (np.asarray(ids, np.uint64) * _GOLDEN)) >> np.uint64(32)).astype(np.uint32)


def _fmix32(x: np.ndarray) -> np.ndarray:
  """MurmurHash3's 32-bit finalizer: a fast bijective mixing of uint32 arrays."""
  x = (x ^ (x >> np.uint32(16))) * np.uint32(0x85EBCA6B)
  x = (x ^ (x >> np.uint32(13))) * np.uint32(0xC2B2AE35)
  return x ^ (x >> np.uint32(16))


def uniforms(keys: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
  """`[n, *shape]` float32 uniforms in [0, 1) on a 2^-24 grid; element d of example b is a hash of
  (keys[b], d)."""
  size = int(np.prod(shape))
  with np.errstate(over="ignore"):
    counters = np.arange(1, size + 1, dtype=np.uint32) * np.uint32(0x9E3779B9)
    bits = _fmix32(keys[:, None] ^ counters[None, :])
  return ((bits >> np.uint32(8)).astype(np.float32) * np.float32(2.0**-24)).reshape(
      (len(keys),) + tuple(shape))


@dataclasses.dataclass(frozen=True)
class Options:
  """Steps 2-4 for one source, resolved once from the config (no config lookups per batch)."""

  num_bits: int
  binarize: bool
  dequantize: bool
  symmetric: bool
  top: float  # L, the largest level after step 2

  @classmethod
  def from_config(cls, data: ml_collections.ConfigDict, max_value: float) -> "Options":
    top = float(max_value)
    if data.num_bits:
      if max_value != 255:
        raise UserError(f"data.num_bits={data.num_bits} needs 8-bit data, but this source's "
                        f"largest value is {max_value:g}; set data.num_bits=0")
      top = float(2 ** data.num_bits - 1)
    return cls(num_bits=data.num_bits, binarize=data.binarize != "none",
               dequantize=data.dequantize, symmetric=data.scale == "symmetric", top=top)

  @property
  def needs_draw(self) -> bool:
    return self.binarize or self.dequantize

  def process(self, images: np.ndarray, keys: np.ndarray | None) -> np.ndarray:
    """Steps 2-4 on a batch: raw `images [n, ...]` -> float32 `[n, ...]`.

    `keys [n]` (from `example_keys`) seed the draws; None when `needs_draw` is False.
    """
    if self.num_bits:
      images = np.right_shift(images.astype(np.uint8), 8 - self.num_bits)
    levels = images.astype(np.float32)
    if self.binarize:
      x = (uniforms(keys, levels.shape[1:]) < levels / np.float32(self.top)).astype(np.float32)
    elif self.dequantize:
      x = (levels + uniforms(keys, levels.shape[1:])) / np.float32(self.top + 1)
    else:
      x = levels / np.float32(self.top)
    return 2.0 * x - 1.0 if self.symmetric else x


def crop_and_resize(image: np.ndarray, crop: int, resize: int) -> np.ndarray:
  """Step 1 on one `[H, W, C]` uint8 image."""
  if crop:
    h, w = image.shape[:2]
    top, left = (h - crop) // 2, (w - crop) // 2
    image = image[top:top + crop, left:left + crop]
  if resize:
    rows, cols = _area_weights(image.shape[0], resize), _area_weights(image.shape[1], resize)
    averaged = np.einsum("oh,hwc,pw->opc", rows, image.astype(np.float64), cols, optimize=True)
    image = np.clip(np.rint(averaged), 0, 255).astype(np.uint8)
  return image


def _area_weights(size_in: int, size_out: int) -> np.ndarray:
  """`[size_out, size_in]`: the fraction of output pixel o's interval covered by input pixel i."""
  edges = np.arange(size_out + 1) * (size_in / size_out)
  pixels = np.arange(size_in)[None, :]
  overlap = np.minimum(edges[1:, None], pixels + 1) - np.maximum(edges[:-1, None], pixels)
  return np.clip(overlap, 0.0, None) / (size_in / size_out)
