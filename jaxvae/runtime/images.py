"""Image grids of a model: samples (at one temperature or several), reconstructions, latent
interpolations and traversals, and reconstructions from the top latent groups of a hierarchy.

One implementation of each grid, shared by `jaxvae sample` and the trainer (PNG files and
TensorBoard images every `train.image_every` steps). The grid functions are pure functions of the
variables (call them under `jax.jit`) and return `[N, *data_shape]` image means in data scale;
`grid_pixels` lays N images out in rows.

    images = interpolations(model, variables, x[0:2:2], x[1:2:2], steps=10)  # [1 * 10, H, W, C]
    save_image_grid(images, "interpolation.png", columns=10)
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
from etils import epath
from PIL import Image

from jaxvae.errors import UserError
from jaxvae.models import interface
from jaxvae.runtime import mesh as mesh_lib
from jaxvae.runtime import workdir as workdir_lib


def check_latent_grids(model) -> None:
  """Raises `UserError` unless `model` has the one latent vector that interpolations and
  traversals move through (capability `LATENT_VECTOR`)."""
  if not interface.has(model, interface.LATENT_VECTOR):
    raise UserError(f"latent interpolations and traversals need a model with one latent vector "
                    f"(capability LATENT_VECTOR, e.g. model.kind 'vae' or 'cvae'); "
                    f"{type(model).__name__} has none: use --kind=samples or "
                    f"--kind=reconstructions")


def check_temperature(model, temperature: float) -> None:
  """Raises `UserError` unless sampling `model` at `temperature` is defined: temperature 1 for
  every model, any `temperature >= 0` for a model with capability `TEMPERATURE`."""
  if temperature < 0:
    raise UserError(f"the sampling temperature must be >= 0, got {temperature}")
  if temperature != 1.0 and not interface.has(model, interface.TEMPERATURE):
    raise UserError(f"a sampling temperature other than 1 (got {temperature}) scales the noise of "
                    f"a N(0, I) prior (capability TEMPERATURE, e.g. model.kind 'vae' or 'cvae' "
                    f"with model.prior='standard_normal'); {type(model).__name__} here has none: "
                    f"use temperature 1")


def sample_columns(model, labels: jax.Array | None = None) -> int | None:
  """Columns of a sample grid: one per class for a conditional model drawing every class in turn
  (`labels` None), so that each column shows one class; else None (about square)."""
  return model.num_classes if labels is None and interface.has(model, interface.LABELS) else None


def samples(model, variables, key: jax.Array, num: int, temperature: float = 1.0,
            labels: jax.Array | None = None) -> jax.Array:
  """`[num, *data_shape]` means of p(x | z) for z ~ p(z); at `temperature` T != 1 (see
  `check_temperature`), z = T eps, so T = 0 decodes the prior mean z = 0 (Kingma & Dhariwal,
  2018). A conditional VAE draws for `labels [num]`, or cycles through the classes when None."""
  check_temperature(model, temperature)
  if temperature == 1.0:
    return model.apply(variables, key, num, labels, method=model.sample)
  return model.apply(variables, key, num, labels, temperature, method=model.sample)


def temperature_samples(model, variables, key: jax.Array, num: int,
                        temperatures: tuple[float, ...], labels: jax.Array | None = None
                        ) -> jax.Array:
  """`[len(temperatures) * num, *data_shape]`: row i holds `samples(..., key, num,
  temperatures[i], labels)`, the same draws of the noise at each temperature (see
  `check_temperature`); one decoder, vmapped over the temperatures."""
  for temperature in temperatures:
    check_temperature(model, temperature)
  draw = lambda t: model.apply(variables, key, num, labels, t, method=model.sample)  # noqa: E731
  rows = jax.vmap(draw)(jnp.asarray(temperatures, jnp.float32))
  return rows.reshape((-1,) + rows.shape[2:])


def check_group_grids(model) -> None:
  """Raises `UserError` unless `model` is a hierarchy of latent groups (capability
  `LATENT_GROUPS`)."""
  if not interface.has(model, interface.LATENT_GROUPS):
    raise UserError(f"reconstructions from the top latent groups need a hierarchy of groups "
                    f"(capability LATENT_GROUPS, e.g. model.kind 'vdvae'); "
                    f"{type(model).__name__} has none: use --kind=reconstructions")


def group_counts(num_groups: int) -> tuple[int, ...]:
  """`(0, 1, 2, 4, ..., num_groups)`: the numbers of top groups that the columns of
  `group_reconstructions` take from the posterior (powers of two below G, then G)."""
  powers = [2**i for i in range(num_groups.bit_length()) if 2**i < num_groups]
  return (0, *powers, num_groups)


def group_reconstructions(model, variables, x: jax.Array, key: jax.Array,
                          counts: tuple[int, ...], temperature: float = 1.0) -> jax.Array:
  """`[B * (1 + len(counts)), *data_shape]`: row b holds test image `x[b]`, then for each n in
  `counts` (e.g. `group_counts(model.num_groups)`) its reconstruction from the top n latent groups
  at q's means and the others drawn from the prior at `temperature` with `key` (the same draws in
  every column): n = 0 is a sample, n = G the reconstruction (Child, 2021, Figure 4)."""
  check_group_grids(model)
  check_temperature(model, temperature)
  columns = jax.vmap(lambda n: model.apply(variables, x, key, n, temperature,  # One decoder.
                                           method=model.reconstruct_from_groups))(
                                               jnp.asarray(counts))
  return jnp.concatenate([x[:, None], jnp.moveaxis(columns, 0, 1)], axis=1).reshape(
      (-1,) + x.shape[1:])


def reconstructions(model, variables, x: jax.Array,
                    labels: jax.Array | None = None) -> jax.Array:
  """`x [B, *data_shape]` interleaved with its reconstructions: `[2B, *data_shape]`, image b at
  row `2b` and its reconstruction (mean of p(x | z) at the posterior's mode) at `2b + 1`."""
  recon = model.apply(variables, x, labels, method=model.reconstruct)
  return jnp.stack([x, recon], axis=1).reshape((-1,) + x.shape[1:])


def interpolations(model, variables, x_start: jax.Array, x_end: jax.Array, steps: int,
                   labels_start: jax.Array | None = None,
                   labels_end: jax.Array | None = None) -> jax.Array:
  """`[P * steps, *data_shape]`: row p decodes `(1 - t) z(x_start_p) + t z(x_end_p)` for `steps`
  values of t from 0 to 1, with `z(x)` the mode of q(z | x) (`x_start`, `x_end`: `[P, ...]`).
  A conditional VAE decodes each row with its start image's label."""
  check_latent_grids(model)

  def draw(module):
    z0 = module.latent_code(x_start, labels_start)  # [P, L]
    z1 = module.latent_code(x_end, labels_end)
    t = jnp.linspace(0.0, 1.0, steps)[None, :, None]
    z = ((1 - t) * z0[:, None] + t * z1[:, None]).reshape(-1, z0.shape[-1])  # [P * steps, L]
    labels = None if labels_start is None else jnp.repeat(labels_start, steps)
    return module.decode_latent(z, labels)

  return model.apply(variables, method=draw)


def traversals(model, variables, x: jax.Array, steps: int, radius: float, num_dims: int,
               labels: jax.Array | None = None) -> jax.Array:
  """`[num_dims * steps, *data_shape]`: row d decodes the code `z(x)` of one image `x [1, ...]`
  with its dimension d replaced by `steps` values from `-radius` to `radius` (the first
  `num_dims` dimensions; the others stay at the mode of q(z | x))."""
  check_latent_grids(model)
  if not 0 < num_dims <= model.latent_dim:
    raise UserError(f"traversals of {num_dims} dimensions: the model has model.latent_dim="
                    f"{model.latent_dim}; choose 1..{model.latent_dim}")

  def draw(module):
    z = jnp.tile(module.latent_code(x, labels), (num_dims, steps, 1))  # [num_dims, steps, L]
    values = jnp.broadcast_to(jnp.linspace(-radius, radius, steps), (num_dims, steps))
    z = z.at[jnp.arange(num_dims), :, jnp.arange(num_dims)].set(values)
    labels_ = None if labels is None else jnp.repeat(labels, num_dims * steps)
    return module.decode_latent(z.reshape(num_dims * steps, -1), labels_)

  return model.apply(variables, method=draw)


def grid_pixels(images: np.ndarray, columns: int | None = None, scale: int = 4) -> np.ndarray:
  """`images [N, H, W, C]` (C in {1, 3}, values in [0, 1]) -> one uint8 grid `[H', W', C]` of
  `columns` (default: about sqrt(N)) images per row, 1-pixel white borders, each pixel `scale`
  times."""
  images = np.clip(np.asarray(images, np.float32), 0.0, 1.0)
  n, h, w, c = images.shape
  columns = min(columns or math.ceil(math.sqrt(n)), n)
  rows = math.ceil(n / columns)
  grid = np.ones((rows * (h + 1) + 1, columns * (w + 1) + 1, c), np.float32)
  for i, image in enumerate(images):
    r, col = divmod(i, columns)
    grid[1 + r * (h + 1):1 + r * (h + 1) + h, 1 + col * (w + 1):1 + col * (w + 1) + w] = image
  pixels = (grid * 255).round().astype(np.uint8)
  return pixels.repeat(scale, axis=0).repeat(scale, axis=1)


def save_image_grid(images: np.ndarray, path: str, columns: int | None = None,
                    scale: int = 4) -> np.ndarray:
  """Writes `images [N, H, W, C]` (values in [0, 1]) as one PNG grid; returns its pixels (see
  `grid_pixels`)."""
  pixels = grid_pixels(images, columns, scale)
  path = epath.Path(path)  # Local or gs://.
  path.parent.mkdir(parents=True, exist_ok=True)
  with path.open("wb") as f:
    Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels).save(f, format="PNG")
  return pixels


def to_unit(images: np.ndarray, scale: str) -> np.ndarray:
  """Images in the data's `data.scale` ('unit' [0, 1] or 'symmetric' [-1, 1]) -> [0, 1]."""
  return (np.asarray(images) + 1.0) / 2.0 if scale == "symmetric" else np.asarray(images)


# The trainer's grids: 64 samples, 32 test images with their reconstructions, 4 interpolations
# between test images, traversals of the first test image's first 16 latent dimensions; 8 samples
# at each of TEMPERATURES (models with TEMPERATURE); 8 test images reconstructed from their top
# 0, 1, 2, 4, ..., G latent groups (models with LATENT_GROUPS).
NUM_SAMPLES, NUM_RECONSTRUCTIONS, NUM_INTERPOLATIONS, MAX_TRAVERSED_DIMS = 64, 32, 4, 16
STEPS, RADIUS = 10, 3.0
TEMPERATURES, NUM_PER_TEMPERATURE, NUM_GROUP_ROWS = (1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3), 8, 8


def make_image_writer(model, config, mesh, workdir: str, originals: dict):
  """`show(variables, step)`: writes the trainer's grids as `workdir/images/<kind>_<step>.png` and as
  TensorBoard images (`workdir/tensorboard/images`).

  `originals`: a global batch `{'image': [32 * P, ...], 'label': [32 * P]}` of test images.
  Every process must call `show` (it runs under jit on global arrays); process 0 writes.
  Interpolations and traversals are drawn for models with one latent vector (`LATENT_VECTOR`),
  samples at several temperatures for models with `TEMPERATURE`, reconstructions from the top
  groups (at `train.image_temperature`) for models with `LATENT_GROUPS`.
  """
  latent = interface.has(model, interface.LATENT_VECTOR)
  tempered = interface.has(model, interface.TEMPERATURE)
  counts = group_counts(model.num_groups) if interface.has(model, interface.LATENT_GROUPS) else ()
  per_temperature = sample_columns(model) or NUM_PER_TEMPERATURE
  labels_of = lambda y: interface.labels_for(model, y)  # noqa: E731
  temperature = config.train.image_temperature

  def render(variables, x, y):  # Global arrays are arguments: a closure cannot span hosts.
    grids = {
        "samples": samples(model, variables, jax.random.key(config.seed), NUM_SAMPLES,
                           temperature),
        "reconstructions": reconstructions(model, variables, x[:NUM_RECONSTRUCTIONS],
                                           labels_of(y[:NUM_RECONSTRUCTIONS])),
    }
    if latent:
      pairs = slice(0, 2 * NUM_INTERPOLATIONS, 2), slice(1, 2 * NUM_INTERPOLATIONS, 2)
      grids["interpolations"] = interpolations(
          model, variables, x[pairs[0]], x[pairs[1]], STEPS, labels_of(y[pairs[0]]),
          labels_of(y[pairs[1]]))
      grids["traversals"] = traversals(model, variables, x[:1], STEPS, RADIUS,
                                       min(model.latent_dim, MAX_TRAVERSED_DIMS), labels_of(y[:1]))
    if tempered:
      grids["temperatures"] = temperature_samples(model, variables, jax.random.key(config.seed),
                                                  per_temperature, TEMPERATURES)
    if counts:
      grids["groups"] = group_reconstructions(model, variables, x[:NUM_GROUP_ROWS],
                                              jax.random.key(config.seed), counts, temperature)
    return grids

  render = jax.jit(render, out_shardings=mesh_lib.replicated(mesh))
  columns = {"samples": sample_columns(model), "reconstructions": 16, "interpolations": STEPS,
             "traversals": STEPS, "temperatures": per_temperature, "groups": 1 + len(counts)}

  def show(variables, step: int) -> None:
    grids = render(variables, originals["image"], originals["label"])
    if jax.process_index() != 0:
      return
    from tensorboardX import SummaryWriter

    tensorboard = SummaryWriter(workdir_lib.tensorboard_dir(workdir, "images"))
    for kind, images in grids.items():
      pixels = save_image_grid(to_unit(images.addressable_data(0), config.data.scale),
                               workdir_lib.image_path(workdir, kind, step),
                               columns[kind])
      tensorboard.add_image(kind, pixels, step, dataformats="HWC")
    tensorboard.close()

  return show
