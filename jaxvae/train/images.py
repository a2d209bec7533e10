"""PNG grids of images."""

import math
import os

import numpy as np
from PIL import Image


def save_image_grid(images: np.ndarray, path: str, columns: int | None = None,
                    scale: int = 4) -> None:
  """Writes `images [N, H, W, C]` (C in {1, 3}, values in [0, 1]) as one PNG grid."""
  images = np.clip(np.asarray(images, np.float32), 0.0, 1.0)
  n, h, w, c = images.shape
  columns = columns or math.ceil(math.sqrt(n))
  rows = math.ceil(n / columns)
  grid = np.ones((rows * (h + 1) + 1, columns * (w + 1) + 1, c), np.float32)
  for i, image in enumerate(images):
    r, col = divmod(i, columns)
    grid[1 + r * (h + 1):1 + r * (h + 1) + h, 1 + col * (w + 1):1 + col * (w + 1) + w] = image
  pixels = (grid * 255).round().astype(np.uint8)
  pixels = pixels.repeat(scale, axis=0).repeat(scale, axis=1)
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  Image.fromarray(pixels[..., 0] if c == 1 else pixels).save(path)
