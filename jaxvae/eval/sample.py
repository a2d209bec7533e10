"""Image grids of a trained model as PNG files: `jaxvae sample --kind=...`.

    samples          `num` draws from p(z) decoded (`temperature`, `label` for a conditional VAE)
    temperatures     one row of `num` draws per temperature of `images.TEMPERATURES` (1.0 to 0.3),
                     the same noise in each row
    reconstructions  the first `num` test images, each next to its reconstruction
    interpolations   one row per pair of test images (`images=(i, j, ...)`), `steps` columns
    traversals       one row per latent dimension (the first `num`) of test image `images[0]`,
                     that dimension swept over [-radius, radius]
    groups           the first `num` test images, each followed by its reconstructions from the
                     top 0, 1, 2, 4, ..., G latent groups, the rest drawn from the prior at
                     `temperature` (hierarchies of latent groups)

The grids themselves are `jaxvae.runtime.images`, the same the trainer writes during training.
"""

import jax
import numpy as np

from jaxvae import data as data_lib
from jaxvae.errors import UserError
from jaxvae.models import interface
from jaxvae.runtime import images as images_lib
from jaxvae.runtime import mesh as mesh_lib
from jaxvae.runtime.trained import load_trained

KINDS = ("samples", "temperatures", "reconstructions", "interpolations", "traversals", "groups")


def _check_request(kind: str, num: int, model, images: tuple[int, ...], label: int | None,
                   steps: int, radius: float, temperature: float) -> None:
  """Raises `UserError` naming the flag of the first impossible request."""
  if kind not in KINDS:
    raise UserError(f"--kind={kind!r}; choose one of {', '.join(KINDS)}")
  if num <= 0:
    raise UserError(f"--num must be positive, got {num}")
  images_lib.check_temperature(model, temperature)
  if kind == "temperatures":
    images_lib.check_temperature(model, min(images_lib.TEMPERATURES))
  if kind == "groups":
    images_lib.check_group_grids(model)
  if label is not None and not (interface.has(model, interface.LABELS)
                                and 0 <= label < model.num_classes):
    classes = (f"a label in 0..{model.num_classes - 1}" if interface.has(model, interface.LABELS)
               else f"a conditional model (capability LABELS); {type(model).__name__} is not one")
    raise UserError(f"--label={label} needs {classes}")
  if kind in ("interpolations", "traversals"):
    images_lib.check_latent_grids(model)
    if steps < 2 or radius <= 0:
      raise UserError(f"--steps must be >= 2 and --radius > 0, got {steps} and {radius}")
    if not images or any(i < 0 for i in images) or (kind == "interpolations" and len(images) % 2):
      raise UserError(f"--images={','.join(map(str, images))}: give test-image indices >= 0, "
                      f"pairs of them for interpolations (e.g. --images=0,1,2,3)")


def _test_images(config, count: int) -> dict:
  """The first `count` images of the eval split with their labels (one process)."""
  split = data_lib.load_split(config.data, config.data.eval_split)
  if count > len(split.source):
    raise UserError(f"the grid needs test image {count - 1}, but split "
                    f"{config.data.eval_split!r} has {len(split.source)} images")
  batch = next(data_lib.eval_batches(config, split, count))
  return {k: batch[k] for k in ("image", "label")}


def sample_to_png(workdir: str, num: int, out: str, seed: int = 0, step: int | None = None,
                  kind: str = "samples", temperature: float = 1.0, label: int | None = None,
                  images: tuple[int, ...] = (0, 1), steps: int = 10, radius: float = 3.0,
                  model=None) -> str:
  """Writes the `kind` grid (see the module docstring) of checkpoint `step` (default: latest) of
  the run in `workdir` to the PNG `out`; returns `out`. The EMA parameters when the run keeps one;
  `model`: default the one the run's config names."""
  config, model, variables, step = load_trained(workdir, step, model)
  if len(model.data_shape) != 3:
    raise UserError(f"jaxvae sample draws images; the data of this run are vectors of shape "
                    f"{tuple(model.data_shape)} (data.source={config.data.source!r})")
  _check_request(kind, num, model, tuple(images), label, steps, radius, temperature)
  labels_of = lambda y: interface.labels_for(model, y)  # noqa: E731
  columns = steps
  if kind in ("samples", "temperatures"):
    labels = np.full((num,), label, np.int32) if label is not None else None
    x = y = None
    if kind == "samples":
      render = lambda v, x, y: images_lib.samples(model, v, jax.random.key(seed), num,
                                                  temperature, labels)
      columns = images_lib.sample_columns(model, labels)
    else:
      render = lambda v, x, y: images_lib.temperature_samples(
          model, v, jax.random.key(seed), num, images_lib.TEMPERATURES, labels)
      columns = num
  else:
    count = num if kind in ("reconstructions", "groups") else max(images) + 1
    batch = _test_images(config, count)
    x, y = batch["image"], batch["label"]
    if kind == "reconstructions":
      render = lambda v, x, y: images_lib.reconstructions(model, v, x[:num], labels_of(y[:num]))
      columns = 16
    elif kind == "groups":
      counts = images_lib.group_counts(model.num_groups)
      render = lambda v, x, y: images_lib.group_reconstructions(
          model, v, x[:num], jax.random.key(seed), counts, temperature)
      columns = 1 + len(counts)
    elif kind == "interpolations":
      start, end = np.array(images[0::2]), np.array(images[1::2])
      render = lambda v, x, y: images_lib.interpolations(
          model, v, x[start], x[end], steps, labels_of(y[start]), labels_of(y[end]))
    else:
      dims = min(num, model.latent_dim)
      render = lambda v, x, y: images_lib.traversals(
          model, v, x[images[0]:images[0] + 1], steps, radius, dims,
          labels_of(y[images[0]:images[0] + 1]))
  grid = jax.jit(render, out_shardings=mesh_lib.replicated(mesh_lib.make_mesh()))(variables, x, y)
  if jax.process_index() == 0:
    images_lib.save_image_grid(images_lib.to_unit(grid.addressable_data(0), config.data.scale),
                               out, columns)
    print(f"Wrote {kind} of step {step} to {out}")
  return out
