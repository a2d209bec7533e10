"""A folder of image files as a random-access source.

Layout: `PATH/<split>/*.png` (no labels), or `PATH/<split>/<class>/*.png` (labels are the indices of
the sorted class folder names). PNG, JPEG, BMP and GIF files; every image is read as grayscale or
RGB (decided by the first one) and must have the first one's size unless `data.crop` /
`data.resize` make them equal.
"""

import os

import numpy as np
from PIL import Image, UnidentifiedImageError

from jaxvae.errors import UserError

EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")


_GRAY_MODES = ("1", "L", "LA", "I", "I;16", "F")


def _read(path: str, mode: str | None) -> np.ndarray:
  """`[H, W, C]` uint8 pixels of `path` in PIL `mode` ('L' or 'RGB'; None: from the file)."""
  try:
    with Image.open(path) as image:
      array = np.asarray(image.convert(mode or ("L" if image.mode in _GRAY_MODES else "RGB")))
  except (OSError, UnidentifiedImageError, ValueError) as e:
    raise UserError(f"cannot read image {path} ({type(e).__name__}); remove or replace the "
                    f"file") from None
  return array[..., None] if array.ndim == 2 else array


class ImageFolder:
  """`folder[i]` is `{'image': uint8 [H, W, C], 'label': int}`, read from disk on access."""

  def __init__(self, root: str, split: str, same_shape: bool):
    split_dir = os.path.join(root, split)
    if not os.path.isdir(split_dir):
      raise UserError(f"data.path {root!r} has no folder {split!r}; put the split's images in "
                      f"{split_dir}/ (or {split_dir}/<class>/)")
    classes = sorted(d for d in os.listdir(split_dir) if os.path.isdir(os.path.join(split_dir, d)))
    folders = [(os.path.join(split_dir, c), i) for i, c in enumerate(classes)] or [(split_dir, -1)]
    self.files = [(os.path.join(folder, name), label) for folder, label in folders
                  for name in sorted(os.listdir(folder)) if name.lower().endswith(EXTENSIONS)]
    if not self.files:
      raise UserError(f"no image files ({', '.join(EXTENSIONS)}) in {split_dir}")
    self.shape = _read(self.files[0][0], None).shape
    self.mode = "L" if self.shape[-1] == 1 else "RGB"
    self._same_shape = same_shape

  def __len__(self) -> int:
    return len(self.files)

  def __getitem__(self, index: int) -> dict:
    path, label = self.files[index]
    image = _read(path, self.mode)
    if self._same_shape and image.shape != self.shape:
      raise UserError(f"image {path} has shape {image.shape} but {self.files[0][0]} has "
                      f"{self.shape}; make them equal or set data.crop / data.resize")
    return {"image": image, "label": label}

  def read(self, indices: np.ndarray) -> dict:
    return read_per_example(self, indices)


def read_per_example(source, indices: np.ndarray) -> dict:
  """`read` for sources that can only fetch one example at a time."""
  elements = [source[int(i)] for i in indices]
  return {"image": np.stack([e["image"] for e in elements]),
          "label": np.array([e["label"] for e in elements], np.int64)}
