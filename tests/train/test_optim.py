"""Optimization from config: schedules, AdamW + clipping, accumulation, EMA, skipped updates, and
several steps per call, each against an independent oracle (closed forms, NumPy, single steps)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvae.errors import UserError
from jaxvae.config import validate
from jaxvae import config as config_lib
from jaxvae.models import build_model
from jaxvae.train import loop
from jaxvae.train import state as state_lib

_SHAPE = (8, 8, 1)


def _vae(data_shape, **section):
  """A VAE built from its config section (`model.kind='vae'` with `section`'s values)."""
  model = config_lib.model_config("vae")
  model.update(section)
  return build_model(model, data_shape)


def _images(seed: int, n: int = 16) -> np.ndarray:
  return (np.random.default_rng(seed).random((n,) + _SHAPE) < 0.3).astype(np.float32)


def _setup(train, ema=False):
  model = _vae(data_shape=_SHAPE, latent_dim=4, hidden_sizes=(16,))
  optimizer, schedule = state_lib.make_optimizer(train)
  state = state_lib.init_state(model, optimizer, _SHAPE, jax.random.key(0), ema=ema)
  step = jax.jit(state_lib.make_train_step(model, optimizer, schedule, train))
  return state, step


@pytest.mark.parametrize("decay", ["constant", "linear", "cosine"])
def test_schedule_matches_its_closed_form(smoke_config, decay):
  train = smoke_config.train
  train.learning_rate, train.warmup_steps, train.num_steps = 0.3, 4, 14
  train.decay, train.end_learning_rate_fraction = decay, 0.1
  schedule = state_lib.make_schedule(train)
  peak, end, warmup, total = 0.3, 0.03, 4, 14

  def expected(s):
    if s < warmup:
      return peak * s / warmup
    t = min(s - warmup, total - warmup) / (total - warmup)
    if decay == "constant":
      return peak
    if decay == "linear":
      return peak + (end - peak) * t
    return end + (peak - end) * (1 + math.cos(math.pi * t)) / 2

  for s in range(total + 4):
    np.testing.assert_allclose(float(schedule(s)), expected(s), rtol=1e-6, atol=1e-9)


def test_first_adamw_update_with_clipping_matches_closed_form(smoke_config):
  train = smoke_config.train
  train.optimizer, train.weight_decay, train.clip_grad_norm = "adamw", 0.1, 1e-6
  train.learning_rate = 0.01
  state, step = _setup(train)
  new_state, metrics = step(state, {"image": _images(0)})
  # Gradient of step 0, recomputed by a plain jax.grad; then Adam's first step (bias-corrected
  # moments = g and g^2) on the clipped gradient, plus decoupled weight decay, in float64.
  model = _vae(data_shape=_SHAPE, latent_dim=4, hidden_sizes=(16,))
  keys = jax.random.split(jax.random.fold_in(jax.random.wrap_key_data(state.key), 0), (1, 16))
  grads = jax.grad(lambda p: -jnp.mean(model.apply({"params": p}, _images(0), keys,
                                                   method=model.log_weights).values))(state.params)
  g = [np.asarray(a, np.float64) for a in jax.tree.leaves(grads)]
  norm = math.sqrt(sum(float((a ** 2).sum()) for a in g))
  np.testing.assert_allclose(float(metrics["grad_norm"]), norm, rtol=1e-5)
  scale = min(1.0, 1e-6 / norm)
  for p0, p1, gi in zip(jax.tree.leaves(state.params), jax.tree.leaves(new_state.params), g):
    clipped = gi * scale
    update = -0.01 * (clipped / (np.abs(clipped) + 1e-8) + 0.1 * np.asarray(p0, np.float64))
    np.testing.assert_allclose(np.asarray(p1, np.float64) - p0, update, rtol=2e-3, atol=1e-8)


def test_accumulated_micro_batches_equal_the_full_batch(smoke_config):
  train = smoke_config.train
  state, step = _setup(train)
  train.accumulate_steps = 4
  _, accumulated_step = _setup(train)
  batch = {"image": _images(1), "label": np.arange(16, dtype=np.int32)}
  full, full_metrics = step(state, batch)
  accumulated, accumulated_metrics = accumulated_step(state, batch)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6),
               full.params, accumulated.params)
  for key in ("loss", "elbo", "kl", "grad_norm"):
    np.testing.assert_allclose(accumulated_metrics[key], full_metrics[key], rtol=1e-5)


def test_ema_follows_its_recursion(smoke_config):
  smoke_config.train.ema_decay = 0.9
  state, step = _setup(smoke_config.train, ema=True)
  history = [state.params]
  for seed in range(3):
    state, _ = step(state, {"image": _images(seed)})
    history.append(state.params)
  expected = jax.tree.map(lambda a: np.asarray(a, np.float64), history[0])
  for params in history[1:]:
    expected = jax.tree.map(lambda e, p: 0.9 * e + 0.1 * np.asarray(p, np.float64), expected, params)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7),
               state.ema_params, expected)


def test_a_nan_batch_is_skipped_and_counted_and_training_continues(smoke_config):
  smoke_config.train.ema_decay = 0.5
  state, step = _setup(smoke_config.train, ema=True)
  poisoned = _images(0)
  poisoned[3, 2, 2, 0] = np.nan
  after_nan, metrics = step(state, {"image": poisoned})
  assert int(after_nan.step) == 1 and int(metrics["skipped"]) == 1
  assert int(after_nan.skipped_updates) == 1 and int(after_nan.consecutive_skips) == 1
  for name in ("params", "opt_state", "ema_params"):
    jax.tree.map(np.testing.assert_array_equal, getattr(after_nan, name), getattr(state, name))
  after_good, metrics = step(after_nan, {"image": _images(1)})
  assert int(metrics["skipped"]) == 0 and int(after_good.consecutive_skips) == 0
  assert int(after_good.skipped_updates) == 1 and int(after_good.step) == 2
  assert all(np.all(np.isfinite(a)) for a in jax.tree.leaves(after_good.params))
  assert not np.array_equal(after_good.params["encoder"]["Dense_0"]["kernel"],
                            state.params["encoder"]["Dense_0"]["kernel"])


def test_an_exploding_gradient_is_skipped(smoke_config):
  smoke_config.train.skip_grad_norm = 1e-3  # below any gradient norm of this untrained model
  state, step = _setup(smoke_config.train)
  new_state, metrics = step(state, {"image": _images(0)})
  assert float(metrics["grad_norm"]) > 1e-3 and int(new_state.skipped_updates) == 1
  jax.tree.map(np.testing.assert_array_equal, new_state.params, state.params)


@pytest.mark.parametrize("step, expected_beta", [(0, 0.0), (5, 2.0), (10, 4.0), (30, 4.0)])
def test_beta_vae_loss_with_kl_warmup(smoke_config, step, expected_beta):
  """beta-VAE with a linear KL warm-up: loss = -(mean log p(x|z) - beta_t mean KL) in float64."""
  train = smoke_config.train
  train.beta, train.kl_warmup_steps = 4.0, 10
  validate(smoke_config)
  state, step_fn = _setup(train)
  state = state.replace(step=jnp.int32(step))
  images = _images(0)
  model = _vae(data_shape=_SHAPE, latent_dim=4, hidden_sizes=(16,))
  keys = jax.random.split(jax.random.fold_in(jax.random.wrap_key_data(state.key), step), (1, 16))
  terms = model.apply({"params": state.params}, images, keys, method=model.log_weights)
  log_likelihood = np.asarray(terms.log_likelihood, np.float64)
  kl = np.asarray(terms.log_posterior, np.float64) - np.asarray(terms.log_prior, np.float64)
  expected = -(log_likelihood.mean() - expected_beta * kl.mean())
  _, metrics = step_fn(state, {"image": images})
  np.testing.assert_allclose(float(metrics["loss"]), expected, rtol=1e-5)
  train.objective = "iwae"
  with pytest.raises(UserError, match="keep beta=1"):
    validate(smoke_config)


@pytest.mark.parametrize("network", ["mlp", "resnet"])
def test_several_steps_per_call_equal_one_step_per_call(smoke_config, network):
  train = smoke_config.train
  train.ema_decay = 0.9
  smoke_config.model.update(network=network, channels=(4,), hidden_sizes=(16,), latent_dim=4)
  model = build_model(smoke_config.model, _SHAPE)
  optimizer, schedule = state_lib.make_optimizer(train)
  state = state_lib.init_state(model, optimizer, _SHAPE, jax.random.key(0), ema=True)
  images = np.stack([_images(seed) for seed in range(4)])
  chunked = jax.jit(state_lib.make_train_step(model, optimizer, schedule, train, chunked=True))
  # On the CPU, only the convolutional step runs one step per call (jax#12868).
  assert loop.convolves_on_cpu(chunked, state, {"image": images}) == (network == "resnet")
  single = jax.jit(state_lib.make_train_step(model, optimizer, schedule, train))
  one_by_one, losses = state, []
  for i in range(4):
    one_by_one, metrics = single(one_by_one, {"image": images[i]})
    losses.append(metrics["loss"])
  per_call = 1 if network == "resnet" else 4  # as the trainer calls it (a chunk of 1: no loop)
  together, chunk_losses = state, []
  for i in range(0, 4, per_call):
    together, metrics = chunked(together, {"image": images[i:i + per_call]})
    chunk_losses.append(metrics["loss"])
  jax.tree.map(np.testing.assert_array_equal, together, one_by_one)
  np.testing.assert_array_equal(np.concatenate(chunk_losses), np.stack(losses))


@pytest.mark.parametrize("key, value, message", [
    ("train.optimizer", "sgd", "choose one of adam, adamw"),
    ("train.decay", "step", "choose one of constant, cosine, linear"),
    ("train.weight_decay", 0.1, "needs train.optimizer='adamw'"),
    ("train.accumulate_steps", 3, "divisible by train.accumulate_steps"),
    ("train.steps_per_call", 0, "must be >= 1"),
    ("train.ema_decay", 1.0, "must be in"),
    ("train.beta", -1.0, "must be >= 0"),
    ("train.clip_grad_norm", -1.0, "must be >= 0"),
    ("train.compute_dtype", "float16", "choose one of float32, bfloat16"),
])
def test_bad_optimizer_settings_are_rejected(smoke_config, key, value, message):
  section, name = key.split(".")
  smoke_config[section][name] = value
  with pytest.raises(UserError, match=message):
    validate(smoke_config)


def test_bfloat16_compute_keeps_float32_params_and_a_close_loss(smoke_config):
  state, step = _setup(smoke_config.train)
  _, f32 = step(state, {"image": _images(0)})
  smoke_config.train.compute_dtype = "bfloat16"
  _, bf16_step = _setup(smoke_config.train)
  new_state, bf16 = bf16_step(state, {"image": _images(0)})
  assert all(a.dtype == jnp.float32 for a in jax.tree.leaves(new_state.params))
  # A few bfloat16 roundings (eps = 2^-8) per term of the bound.
  np.testing.assert_allclose(bf16["loss"], f32["loss"], rtol=8 * float(jnp.finfo(jnp.bfloat16).eps))
