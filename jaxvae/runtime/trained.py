"""Models and their variables: initialized, described abstractly, or read back from a trained run.

    config, model, variables, step = load_trained("runs/digits_vae")
    images = model.apply(variables, jax.random.key(0), 16, method=model.sample)

A model's variables are `{'params': ..., <state collections>: ...}` (see
`jaxvae.models.interface`); a train state keeps the parameters and the state apart
(`split_variables`), a checkpoint saves both.
"""

from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from jaxvae import config as config_lib
from jaxvae import data as data_lib
from jaxvae import models
from jaxvae.errors import UserError
from jaxvae.models import interface
from jaxvae.models.interface import PARAMS, TRANSIENT
from jaxvae.runtime import checkpoint as checkpoint_lib
from jaxvae.runtime import mesh as mesh_lib
from jaxvae.runtime import workdir as workdir_lib


def init_variables(model: nn.Module, data_shape: tuple[int, ...], key: jax.Array) -> dict:
  """The model's variables from `key` (parameters and state; no transient collections); jit with
  out-shardings so they are built where they live."""
  x, labels = jnp.zeros((1,) + tuple(data_shape), jnp.float32), jnp.zeros((1,), jnp.int32)
  variables = model.init(key, x, jax.random.split(key, (1, 1)), labels,
                         method=model.log_weights)
  return {name: value for name, value in variables.items() if name not in TRANSIENT}


def split_variables(variables: dict) -> tuple[Any, dict]:
  """`(params, state)`: the trained parameters and the other collections."""
  return variables[PARAMS], {k: v for k, v in variables.items() if k != PARAMS}


def abstract_variables(model: nn.Module, data_shape: tuple[int, ...], sharding) -> dict:
  """Shapes, dtypes and `sharding` of the variables, without computing them (for restores)."""
  shapes = jax.eval_shape(lambda key: init_variables(model, data_shape, key), jax.random.key(0))
  return jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sharding), shapes)


def build_model(model: ml_collections.ConfigDict, data_shape: tuple[int, ...],
                pixel_mean=None) -> nn.Module:
  """`jaxvae.models.build_model` with `load_trained` at hand, for models built on a trained run."""
  return models.build_model(model, data_shape, pixel_mean=pixel_mean,
                            load_trained=lambda workdir: load_trained(workdir)[:3])


def check_labels(model: nn.Module, split: data_lib.Split, name: str) -> None:
  """Raises `UserError` when a conditional model (capability `LABELS`) meets data without labels
  (a source without them gives -1)."""
  if interface.has(model, interface.LABELS) and len(split.source) and split.source[0]["label"] < 0:
    raise UserError(f"{type(model).__name__} is conditioned on labels (num_classes="
                    f"{model.num_classes}), but split {name!r} has none: use data with labels "
                    f"(an npz needs '<split>_labels' arrays) or an unconditional model")


class Trained(NamedTuple):
  config: ml_collections.ConfigDict
  model: nn.Module
  variables: dict  # replicated over every device; the EMA parameters when the run keeps one
  step: int


def load_trained(workdir: str, step: int | None = None, model: nn.Module | None = None) -> Trained:
  """Checkpoint `step` (default: the latest) of the run in `workdir`: its saved config, its model
  (`model`, or the one its config names) and variables replicated over the devices."""
  config = config_lib.load_config(workdir_lib.config_path(workdir))
  shape = data_lib.load_split(config.data, config.data.eval_split).image_shape
  model = model or build_model(config.model, shape)
  checkpoints = checkpoint_lib.Checkpoints(workdir, read_only=True)
  try:
    step = checkpoints.resolve_step(step)
    replicated = mesh_lib.replicated(mesh_lib.make_mesh())
    variables = checkpoints.restore_variables(step, abstract_variables(model, shape, replicated))
  finally:
    checkpoints.close()
  return Trained(config, model, variables, step)
