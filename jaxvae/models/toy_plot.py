"""The classic picture of the 1-D toy as a PNG (drawn with PIL; matplotlib is not a dependency)."""

import os

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image, ImageDraw

COLOURS = {"data": (190, 190, 190), "p_x": (0, 0, 0), "z0": (31, 119, 180), "z1": (214, 39, 40),
           "q": (44, 160, 44), "axis": (120, 120, 120)}


def toy_curves(model, params, grid: np.ndarray) -> dict[str, np.ndarray]:
  """On `grid [G]`: `p_x` = p(x), `z0`, `z1` = p(z) p(x | z), `q` = q(z = 1 | x), float64 `[G]`."""
  x = jnp.asarray(grid, jnp.float32)[:, None]
  joint = model.apply({"params": params}, x, method=model.log_joint)  # [2, G]
  logit = model.apply({"params": params}, x, method=model.posterior_logit)
  joint = np.exp(np.asarray(joint, np.float64))
  return {"p_x": joint.sum(0), "z0": joint[0], "z1": joint[1],
          "q": np.asarray(jax.nn.sigmoid(logit), np.float64)}


def save_toy_plot(model, params, data: np.ndarray, path: str, width: int = 720,
                  height: int = 480) -> dict[str, np.ndarray]:
  """Writes the toy's picture to `path` and returns the plotted curves (see `toy_curves`).

  Top panel: a histogram of `data [N, 1]` as a density (grey), the learned p(x) (black) and its
  components p(z) p(x | z) for z = 0 (blue) and z = 1 (red). Bottom panel: q(z = 1 | x) (green)
  on [0, 1]. The x axis spans the data with a margin.
  """
  data = np.asarray(data, np.float64).reshape(-1)
  lo, hi = data.min() - 1.0, data.max() + 1.0
  grid = np.linspace(lo, hi, width)
  curves = toy_curves(model, params, grid)
  counts, edges = np.histogram(data, bins=60, range=(lo, hi), density=True)
  top_h, gap = int(height * 0.65), 20
  y_max = 1.1 * max(counts.max(), curves["p_x"].max())
  image = Image.new("RGB", (width, height), (255, 255, 255))
  draw = ImageDraw.Draw(image)
  col = lambda v: (v - lo) / (hi - lo) * (width - 1)  # noqa: E731
  top = lambda d: top_h - 1 - d / y_max * (top_h - 10)  # noqa: E731
  bottom = lambda q: height - 1 - q * (height - top_h - gap - 1)  # noqa: E731
  for count, left, right in zip(counts, edges[:-1], edges[1:]):
    draw.rectangle([col(left), top(count), col(right), top_h - 1], fill=COLOURS["data"])
  draw.line([(0, top_h - 1), (width - 1, top_h - 1)], fill=COLOURS["axis"])
  draw.line([(0, bottom(0.5)), (width - 1, bottom(0.5))], fill=COLOURS["axis"])
  columns = np.arange(width)
  for name, to_y, line_width in (("p_x", top, 5), ("z0", top, 2), ("z1", top, 2), ("q", bottom, 2)):
    draw.line(list(zip(columns.tolist(), to_y(curves[name]).tolist())), fill=COLOURS[name],
              width=line_width)  # p(x) wide and underneath, so the components show on top of it
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  image.save(path)
  return curves
