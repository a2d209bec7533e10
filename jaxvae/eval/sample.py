"""Samples from a trained model as a PNG grid."""

import os

import jax

from jaxvae import config as config_lib
from jaxvae import data as data_lib
from jaxvae.errors import UserError
from jaxvae.models import build_model
from jaxvae.train import checkpoint as checkpoint_lib
from jaxvae.train import mesh as mesh_lib
from jaxvae.train.images import save_image_grid
from jaxvae.train.state import abstract_params


def sample_to_png(workdir: str, num: int, out: str, seed: int = 0, step: int | None = None) -> str:
  """Writes `num` samples (means of p(x | z), z ~ p(z)) of checkpoint `step` (default: latest)."""
  if num <= 0:
    raise UserError(f"--num must be positive, got {num}")
  config = config_lib.load_config(os.path.join(workdir, "config.json"))
  checkpoints = checkpoint_lib.Checkpoints(workdir, read_only=True)
  step = checkpoints.resolve_step(step)
  image_shape = data_lib.load_split(config.data, config.data.eval_split).image_shape
  model = build_model(config.model, image_shape)
  replicated = mesh_lib.replicated(mesh_lib.make_mesh())
  params = checkpoints.restore_params(step, abstract_params(model, image_shape, replicated))
  checkpoints.close()
  samples = jax.jit(lambda p: model.apply({"params": p}, jax.random.key(seed), num,
                                          method=model.sample), out_shardings=replicated)(params)
  if jax.process_index() == 0:
    save_image_grid(samples.addressable_data(0), out)
    print(f"Wrote {num} samples of step {step} to {out}")
  return out
