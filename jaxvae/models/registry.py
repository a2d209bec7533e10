"""Model kinds by name: each registered once with its own config section, validation and builder.

`build_model(config.model, data_shape)` is the only place a name becomes a model. A kind is a
registered name (`@register`, used by the built-in models), or `'module:Class'`, a user's Flax
module importable as `module` whose dataclass fields (except `data_shape`) are its config section,
with their defaults: `config.model = jaxvae.config.model_config('my_vae:MyVAE')`.
"""

import dataclasses
import importlib
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import ml_collections
import numpy as np

from jaxvae.errors import UserError
from jaxvae.models.interface import check_model


@dataclasses.dataclass(frozen=True)
class BuildContext:
  """What a builder may use besides its config section.

  `data_shape`: one example's shape. `pixel_mean()`: the training split's mean image `[*data_shape]`
  for data-dependent initializations (None outside a fresh training run, where they do not
  matter: the parameters come from a checkpoint). `load_trained(workdir)`: a trained run's
  `(config, model, variables)` (`jaxvae.runtime.trained.load_trained`), for models built on a
  frozen one.
  """

  data_shape: tuple[int, ...]
  pixel_mean: Callable[[], np.ndarray] | None = None
  load_trained: Callable[[str], Any] | None = None


@dataclasses.dataclass(frozen=True)
class ModelKind:
  """`defaults()`: the kind's config keys and their defaults (a flat `ConfigDict`, `model.kind`
  excluded); `build(section, context)`: the model; `validate(section, config)`: raises
  `UserError` on values or combinations with the rest of the config that cannot work."""

  name: str
  defaults: Callable[[], ml_collections.ConfigDict]
  build: Callable[[ml_collections.ConfigDict, BuildContext], nn.Module]
  validate: Callable[[ml_collections.ConfigDict, ml_collections.ConfigDict], None]


_KINDS: dict[str, ModelKind] = {}


def register(name: str, defaults: Callable[[], ml_collections.ConfigDict],
             validate: Callable | None = None):
  """Decorator registering `build(section, context) -> model` as model kind `name`."""
  def decorator(build):
    if name in _KINDS:
      raise ValueError(f"model kind {name!r} is registered twice")
    _KINDS[name] = ModelKind(name, defaults, build, validate or (lambda section, config: None))
    return build
  return decorator


def registered_kinds() -> tuple[str, ...]:
  return tuple(_KINDS)


def model_kind(name: str) -> ModelKind:
  """The kind `name`: registered, or a `'module:Class'` path to a user's model."""
  if name in _KINDS:
    return _KINDS[name]
  if ":" in name:
    return _user_kind(name)
  raise UserError(f"model.kind={name!r} is neither a registered kind ({', '.join(_KINDS)}) nor "
                  f"a 'module:Class' path to your own model")


_NOT_CONFIG = ("data_shape", "parent", "name")


def _user_kind(path: str) -> ModelKind:
  module_name, _, class_name = path.partition(":")
  try:
    cls = getattr(importlib.import_module(module_name), class_name)
  except (ImportError, AttributeError) as e:
    raise UserError(f"model.kind={path!r}: cannot import {class_name} from module {module_name!r} "
                    f"({type(e).__name__}: {e}); make the module importable, e.g. "
                    f"PYTHONPATH=DIR_OF_THE_MODULE") from None
  if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
    raise UserError(f"model.kind={path!r} names {cls!r}, not a flax.linen.Module class")
  fields = [f for f in dataclasses.fields(cls) if f.name not in _NOT_CONFIG and f.init]
  missing = [f.name for f in fields
             if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
  if missing:
    raise UserError(f"{path}: every field but data_shape needs a default (its config value), "
                    f"{', '.join(missing)} has none")

  def defaults():
    return ml_collections.ConfigDict(
        {f.name: f.default if f.default is not dataclasses.MISSING else f.default_factory()
         for f in fields})

  def build(section, context):
    return cls(data_shape=tuple(context.data_shape), **section.to_dict())

  return ModelKind(path, defaults, build, lambda section, config: None)


def build_model(model: ml_collections.ConfigDict, data_shape: tuple[int, ...], *,
                pixel_mean: Callable[[], np.ndarray] | None = None,
                load_trained: Callable[[str], Any] | None = None) -> nn.Module:
  """The model named by the `model` section of a config (`model.kind` and that kind's keys), for
  examples of shape `data_shape`; see `BuildContext` for the rest. Raises `UserError` when the
  model cannot take data of this shape or lacks part of the interface."""
  kind = model_kind(model.kind)
  section = ml_collections.ConfigDict({k: v for k, v in model.items() if k != "kind"})
  built = kind.build(section, BuildContext(tuple(data_shape), pixel_mean, load_trained))
  check_model(built)
  return built
