"""The train state and the pure train step."""

import functools
from typing import Any

import flax.linen as nn
import flax.struct
import jax
import jax.numpy as jnp
import ml_collections
import optax

from jaxvae import losses


@flax.struct.dataclass
class TrainState:
  step: jax.Array  # [] int32: number of updates applied
  params: Any
  opt_state: Any


def make_optimizer(train: ml_collections.ConfigDict) -> tuple[optax.GradientTransformation,
                                                             optax.Schedule]:
  """Adam at `train.learning_rate`, and the schedule it follows (reported as `learning_rate`)."""
  schedule = optax.constant_schedule(train.learning_rate)
  return optax.adam(schedule), schedule


def init_params(model: nn.Module, data_shape: tuple[int, ...], key: jax.Array) -> Any:
  """Model parameters from `key`; jit with out-shardings so they are built where they live."""
  x = jnp.zeros((1,) + tuple(data_shape), jnp.float32)
  return model.init(key, x, jax.random.split(key, (1, 1)))["params"]


def abstract_params(model: nn.Module, data_shape: tuple[int, ...], sharding) -> Any:
  """Shapes, dtypes and `sharding` of the parameters, without computing them (for restores)."""
  shapes = jax.eval_shape(lambda key: init_params(model, data_shape, key), jax.random.key(0))
  return jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sharding), shapes)


def init_state(model: nn.Module, optimizer: optax.GradientTransformation,
               data_shape: tuple[int, ...], key: jax.Array) -> TrainState:
  params = init_params(model, data_shape, key)
  return TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=optimizer.init(params))


def train_step(state: TrainState, batch: dict, key: jax.Array, *, model: nn.Module,
               optimizer: optax.GradientTransformation, schedule: optax.Schedule,
               objective: str, num_samples: int) -> tuple[TrainState, dict]:
  """One update on the mean over the batch of the per-example objective.

  `objective` is 'elbo' (mean of K log weights) or 'iwae' (the K-sample IWAE bound). Random draws
  use `fold_in(key, step)` split into `[K, B]` per-example keys, independent of the device count.
  """
  images = batch["image"]
  keys = jax.random.split(jax.random.fold_in(key, state.step), (num_samples, images.shape[0]))
  bound = {"elbo": losses.elbo, "iwae": losses.iwae_bound}[objective]

  def loss_fn(params):
    log_weights = model.apply({"params": params}, images, keys, batch.get("label"),
                              method=model.log_weights)
    loss = -jnp.mean(bound(log_weights.values))
    metrics = {"loss": loss, "elbo": jnp.mean(losses.elbo(log_weights.values)),
               "kl": jnp.mean(log_weights.kl),
               "log_likelihood": jnp.mean(log_weights.log_likelihood)}
    if log_weights.layer_kl is not None:
      for layer, kl in enumerate(jnp.mean(log_weights.layer_kl, axis=(1, 2))):
        metrics[f"kl_layer_{layer}"] = kl
    return loss, metrics

  grads, metrics = jax.grad(loss_fn, has_aux=True)(state.params)
  updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
  metrics["learning_rate"] = schedule(state.step)
  metrics["grad_norm"] = optax.tree.norm(grads)
  new_state = TrainState(step=state.step + 1, params=optax.apply_updates(state.params, updates),
                         opt_state=opt_state)
  return new_state, metrics


def make_train_step(model, optimizer, schedule, train: ml_collections.ConfigDict):
  """`train_step` with the model and objective bound: `(state, batch, key) -> (state, metrics)`."""
  return functools.partial(train_step, model=model, optimizer=optimizer, schedule=schedule,
                           objective=train.objective, num_samples=train.num_samples)
