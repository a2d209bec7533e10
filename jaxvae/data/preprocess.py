"""Per-example preprocessing from the `data` section of a config, on NumPy arrays.

The steps, in order:
1. `crop` / `resize` (in `load_split`): center crop to `crop x crop`, then resize to
   `resize x resize` by exact area averaging, rounded to integers; for image sources only.
2. `num_bits`: 8-bit data reduced to `2^num_bits` levels, `v <- floor(v / 2^(8 - num_bits))`
   (Kingma & Dhariwal, 2018); 0 keeps the source's levels (17 for the digits, 256 for uint8).
3. One draw per example, or none: `binarize` (x ~ Bernoulli(v / L), Salakhutdinov & Murray, 2008)
   or `dequantize` (x = (v + u) / (L + 1), u ~ U[0, 1)^D, Theis et al., 2016); otherwise x = v / L,
   with L the largest level. In training, `binarize='dynamic'` and `dequantize` draw afresh each
   time an example is seen; `binarize='static'` and every evaluation use a fixed draw per example.
4. `scale`: 'unit' keeps [0, 1]; 'symmetric' maps to [-1, 1] by x <- 2x - 1.
"""

import ml_collections
import numpy as np

from jaxvae.errors import UserError


def num_levels(data: ml_collections.ConfigDict, max_value: float) -> float:
  """L, the largest level after step 2, for a source whose largest value is `max_value`."""
  if data.num_bits:
    if max_value != 255:
      raise UserError(f"data.num_bits={data.num_bits} needs 8-bit data, but this source's largest "
                      f"value is {max_value:g}; set data.num_bits=0")
    return float(2 ** data.num_bits - 1)
  return float(max_value)


def levels(data: ml_collections.ConfigDict):
  """Step 2: `{'image', 'label'}` -> float32 levels in [0, L] and an int32 label."""
  shift = 8 - data.num_bits if data.num_bits else 0

  def to_levels(element: dict) -> dict:
    image = element["image"]
    if shift:
      image = np.right_shift(image.astype(np.uint8), shift)
    return {"image": image.astype(np.float32), "label": np.int32(element["label"])}
  return to_levels


def needs_draw(data: ml_collections.ConfigDict) -> bool:
  return data.binarize != "none" or data.dequantize


def draw(data: ml_collections.ConfigDict, top: float):
  """Step 3 with randomness: `(element, rng) -> element` with the image in [0, 1]."""
  def apply(element: dict, rng: np.random.Generator) -> dict:
    image = element["image"]
    if data.binarize != "none":
      image = (rng.random(image.shape) < image / top).astype(np.float32)
    else:
      image = ((image + rng.random(image.shape, dtype=np.float32)) / (top + 1)).astype(np.float32)
    return {**element, "image": image}
  return apply


def fixed_draw(data: ml_collections.ConfigDict, top: float, seed: int, salt: int,
               num_examples: int):
  """`draw` with a generator seeded by (seed, salt, example index): the same draw every visit."""
  apply = draw(data, top)

  def apply_fixed(index: int, element: dict) -> dict:
    # Repeated datasets pass indices past the end (epoch * N + i); the example is i.
    return apply(element, np.random.default_rng((seed, salt, index % num_examples)))
  return apply_fixed


def finish(data: ml_collections.ConfigDict, top: float, drawn: bool):
  """Steps 3 (without a draw: x = v / L) and 4."""
  def apply(element: dict) -> dict:
    image = element["image"] if drawn else element["image"] / np.float32(top)
    if data.scale == "symmetric":
      image = 2.0 * image - 1.0
    return {**element, "image": image.astype(np.float32)}
  return apply


def crop_and_resize(image: np.ndarray, crop: int, resize: int) -> np.ndarray:
  """Step 1 on one `[H, W, C]` uint8 image."""
  if crop:
    h, w = image.shape[:2]
    top, left = (h - crop) // 2, (w - crop) // 2
    image = image[top:top + crop, left:left + crop]
  if resize:
    rows, cols = _area_weights(image.shape[0], resize), _area_weights(image.shape[1], resize)
    averaged = np.einsum("oh,hwc,pw->opc", rows, image.astype(np.float64), cols)
    image = np.clip(np.rint(averaged), 0, 255).astype(np.uint8)
  return image


def _area_weights(size_in: int, size_out: int) -> np.ndarray:
  """`[size_out, size_in]`: the fraction of output pixel o's interval covered by input pixel i."""
  edges = np.arange(size_out + 1) * (size_in / size_out)
  pixels = np.arange(size_in)[None, :]
  overlap = np.minimum(edges[1:, None], pixels + 1) - np.maximum(edges[:-1, None], pixels)
  return np.clip(overlap, 0.0, None) / (size_in / size_out)
