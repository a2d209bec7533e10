"""The train state, the optimizer and schedule from config, and the pure train step.

One update (`train_step`), in order:
  1. gradients of the mean over the batch of the negative per-example objective, accumulated over
     `accumulate_steps` equal micro-batches (their mean is the full-batch mean);
  2. skip test: the update is skipped (params, optimizer state and EMA unchanged, `step` still
     advances) when the loss or the global gradient norm is not finite, or the norm exceeds
     `skip_grad_norm` (> 0), or the adaptive threshold of the norm's running statistics
     (`skip_grad_norm_sigmas` > 0, see `grad_norm_threshold`); `skipped_updates` counts them,
     `consecutive_skips` the current run and `guard.longest_skip_run` the longest run so far;
  3. the optax chain: global-norm clipping (Pascanu et al., 2013), then Adam (Kingma & Ba, 2015)
     or AdamW (Loshchilov & Hutter, 2019) at the warm-up + decay schedule, its update scaled by
     `guard.learning_rate_scale` (the back-off of rollbacks: for Adam and AdamW, weight decay
     included, the same as scaling the learning rate). The model's state
     collections (e.g. the VQ-VAE's codebook statistics: no gradient, no optimizer state) take the
     values the model wrote in the step (threaded through the micro-batches with accumulation);
     the `[B]` terms it writes to `losses` join the loss and its `metrics` the step's metrics;
  4. EMA of the parameters: `ema <- d * ema + (1 - d) * params` (Polyak & Juditsky, 1992).
`train_steps` runs a chunk of steps in one device call with `jax.lax.scan` (a chunk of one step
without a loop).
"""

import dataclasses
import functools
import math
from typing import Any

import flax.linen as nn
import flax.struct
from flax import traverse_util
import jax
import jax.numpy as jnp
import ml_collections
import optax

from jaxvae import losses
from jaxvae.losses import estimators
from jaxvae.models import interface
from jaxvae.models.interface import LOSSES, METRICS
from jaxvae.runtime.trained import init_variables, split_variables


@flax.struct.dataclass
class Guard:
  """The state of the guards against bad updates, all `[]` (a checkpoint's `guard` item; one
  written before it existed restores with `Guard.fresh()`).

  The gradient norm's running statistics are the bias-corrected exponential moving averages of
  Adam's moments (decay `d`): after the t-th norm `x_t` fed to them, with
  `w_t = (1 - d) / (1 - d^t)`,
      mean_t = mean_{t-1} + w_t (x_t - mean_{t-1})
      var_t = (1 - w_t) (var_{t-1} + w_t (x_t - mean_{t-1})^2)
  which are exactly `sum_i a_i x_i` and `sum_i a_i (x_i - mean_t)^2` with the normalized weights
  `a_i = (1 - d) d^(t-i) / (1 - d^t)` (West, 1979), in a form free of the cancellation of
  `E[x^2] - mean^2` in float32.
  """

  grad_norm_mean: jax.Array  # [] float32: running mean of the (winsorized) gradient norm
  grad_norm_var: jax.Array  # [] float32: its running variance
  grad_norm_count: jax.Array  # [] int32: norms fed to the statistics (t)
  longest_skip_run: jax.Array  # [] int32: the longest run of consecutive skipped updates so far
  learning_rate_scale: jax.Array  # [] float32: train.rollback_lr_factor ** rollbacks
  rollbacks: jax.Array  # [] int32: rollbacks so far

  @classmethod
  def fresh(cls) -> "Guard":
    """A new run's: no statistics, no skips, no rollbacks."""
    zero, none = jnp.zeros((), jnp.float32), jnp.zeros((), jnp.int32)
    return cls(grad_norm_mean=zero, grad_norm_var=zero, grad_norm_count=none,
               longest_skip_run=none, learning_rate_scale=jnp.ones((), jnp.float32),
               rollbacks=none)


@flax.struct.dataclass
class TrainState:
  step: jax.Array  # [] int32: number of steps taken (updates applied or skipped)
  params: Any
  opt_state: Any
  ema_params: Any  # a copy of the params tree, or None when train.ema_decay == 0
  model_state: dict  # the model's collections other than `params` ({} for most models)
  key: jax.Array  # [2] uint32: raw data of the run's random key (checkpointable)
  skipped_updates: jax.Array  # [] int32: all skipped updates so far
  consecutive_skips: jax.Array  # [] int32: skipped updates since the last applied one
  guard: Guard  # the adaptive skip threshold's statistics, the longest skip run, rollbacks


@dataclasses.dataclass(frozen=True)
class StepOptions:
  """The hashable part of `config.train` that the step needs (never a ConfigDict under jit)."""

  objective: str = "elbo"
  num_samples: int = 1
  accumulate_steps: int = 1
  ema_decay: float = 0.0
  skip_grad_norm: float = 0.0
  skip_grad_norm_sigmas: float = 0.0
  grad_norm_stats_decay: float = 0.99
  compute_dtype: str = "float32"
  beta: float = 1.0
  kl_warmup_steps: int = 0
  num_groups: int = 1
  ciwae_beta: float = 0.5

  @classmethod
  def from_config(cls, train: ml_collections.ConfigDict) -> "StepOptions":
    return cls(objective=train.objective, num_samples=train.num_samples,
               accumulate_steps=train.accumulate_steps, ema_decay=train.ema_decay,
               skip_grad_norm=train.skip_grad_norm,
               skip_grad_norm_sigmas=train.skip_grad_norm_sigmas,
               grad_norm_stats_decay=train.grad_norm_stats_decay,
               compute_dtype=train.compute_dtype,
               beta=train.beta, kl_warmup_steps=train.kl_warmup_steps,
               num_groups=train.num_groups, ciwae_beta=train.ciwae_beta)


def make_schedule(train: ml_collections.ConfigDict) -> optax.Schedule:
  """Learning rate at update `s`, with peak `l = train.learning_rate`, warm-up `W`, `T = num_steps`:

      s < W:       l * s / W
      W <= s <= T: constant: l;  linear: l + (e - l) * (s - W) / (T - W);
                   cosine: e + (l - e) * (1 + cos(pi * (s - W) / (T - W))) / 2
      s > T:       the value at T
  where `e = l * train.end_learning_rate_fraction` (cosine: Loshchilov & Hutter, 2017).
  """
  peak, warmup = train.learning_rate, train.warmup_steps
  end = peak * train.end_learning_rate_fraction
  decay_steps = max(train.num_steps - warmup, 1)
  if train.decay == "cosine":
    decay = optax.cosine_decay_schedule(peak, decay_steps, alpha=train.end_learning_rate_fraction)
  elif train.decay == "linear":
    decay = optax.linear_schedule(peak, end, decay_steps)
  else:
    decay = optax.constant_schedule(peak)
  if not warmup:
    return decay
  return optax.join_schedules([optax.linear_schedule(0.0, peak, warmup), decay], [warmup])


def make_optimizer(train: ml_collections.ConfigDict) -> tuple[optax.GradientTransformation,
                                                             optax.Schedule]:
  """The optax chain of `config.train` (clipping, Adam/AdamW) and its schedule (`make_schedule`)."""
  schedule = make_schedule(train)
  if train.optimizer == "adamw":
    optimizer = optax.adamw(schedule, b1=train.adam_b1, b2=train.adam_b2,
                            weight_decay=train.weight_decay)
  else:
    optimizer = optax.adam(schedule, b1=train.adam_b1, b2=train.adam_b2)
  if train.clip_grad_norm:
    optimizer = optax.chain(optax.clip_by_global_norm(train.clip_grad_norm), optimizer)
  return optimizer, schedule


def init_state(model: nn.Module, optimizer: optax.GradientTransformation,
               data_shape: tuple[int, ...], key: jax.Array, ema: bool = False) -> TrainState:
  """Step 0: parameters from `split(key)[0]`, the run's key (for the steps' draws) from `[1]`."""
  init_key, train_key = jax.random.split(key)
  params, model_state = split_variables(init_variables(model, data_shape, init_key))
  zero = jnp.zeros((), jnp.int32)
  return TrainState(step=zero, params=params, opt_state=optimizer.init(params),
                    ema_params=jax.tree.map(jnp.copy, params) if ema else None,
                    model_state=model_state, key=jax.random.key_data(train_key),
                    skipped_updates=zero, consecutive_skips=zero, guard=Guard.fresh())


def grad_norm_threshold(guard: Guard, sigmas: float, decay: float) -> jax.Array:
  """`[]` the adaptive skip threshold `mean + sigmas * std` of the gradient norm's running
  statistics (`Guard`), or +inf until `round(1 / (1 - decay))` norms have been fed to them (about
  the number of updates the statistics average over)."""
  threshold = guard.grad_norm_mean + sigmas * jnp.sqrt(guard.grad_norm_var)
  return jnp.where(guard.grad_norm_count >= round(1 / (1 - decay)), threshold, jnp.inf)


def update_grad_norm_stats(guard: Guard, grad_norm: jax.Array, threshold: jax.Array,
                           decay: float) -> Guard:
  """`guard` with the `[]` norm `min(grad_norm, threshold)` fed to its running statistics (the
  recurrence of `Guard`); a non-finite norm leaves them as they were.

  Every finite norm counts, the skipped ones too, winsorized at the current threshold: a norm
  whose level drifts or shifts up pulls the mean up by `w sigmas std` and the variance up by a
  factor `(1 - w)(1 + w sigmas^2)` at each skip, so the threshold catches up within a few updates
  (where feeding only applied norms would skip every update from then on: VDVAE's stall, openai/
  vdvae#25); a single spike, however large, moves them only that much, once.
  """
  norm = jnp.minimum(grad_norm, threshold)
  count = guard.grad_norm_count + 1
  # 1 - w_t = (d - d^t) / (1 - d^t), by expm1: exactly 0 at t = 1, so the first norm is the mean.
  keep = decay * jnp.expm1((count - 1) * math.log(decay)) / jnp.expm1(count * math.log(decay))
  delta = norm - guard.grad_norm_mean
  fed = guard.replace(grad_norm_mean=guard.grad_norm_mean + (1 - keep) * delta,
                      grad_norm_var=keep * (guard.grad_norm_var + (1 - keep) * delta ** 2),
                      grad_norm_count=count)
  return jax.tree.map(lambda new, old: jnp.where(jnp.isfinite(grad_norm), new, old), fed, guard)


def rolled_back(restored: TrainState, current: Guard, lr_factor: float) -> TrainState:
  """The state a rollback continues from: `restored` (the last checkpoint's, or the initial one)
  with the `current` guard's learning-rate scale times `lr_factor`, its rollbacks plus one, and its
  longest skip run (that of the whole run, the discarded steps included)."""
  guard = restored.guard.replace(
      learning_rate_scale=current.learning_rate_scale * jnp.float32(lr_factor),
      rollbacks=current.rollbacks + 1, longest_skip_run=current.longest_skip_run)
  return restored.replace(guard=guard)


def _microbatches(tree: Any, num: int, axis: int) -> Any:
  """`[..., B, ...]` (batch at `axis`) -> `[num, ..., B / num, ...]`; micro-batch j holds examples
  j, j + num, ... so that each keeps its even split over the `data` mesh axis."""
  def split(a):
    shape = a.shape[:axis] + (a.shape[axis] // num, num) + a.shape[axis + 1:]
    return jnp.moveaxis(a.reshape(shape), axis + 1, 0)
  return jax.tree.map(split, tree)


# Objectives whose inference parameters get another gradient than the generative ones; they need
# the model's `inference_modules` (capability SEPARATE_INFERENCE).
SPLIT_OBJECTIVES = ("iwae_dreg", "piwae")


def split_parameters(model: nn.Module, params: dict) -> tuple[dict, dict]:
  """`(inference only, generative only)`: the parameters with the generative ones held fixed
  (`stop_gradient`), and with the inference ones (the model's `inference_modules`) held fixed."""
  inference = set(model.inference_modules)
  frozen = jax.lax.stop_gradient
  return ({k: v if k in inference else frozen(v) for k, v in params.items()},
          {k: frozen(v) if k in inference else v for k, v in params.items()})


def _frozen(model, variables, images, labels, log_weights, latents) -> jax.Array:
  """`[K, B]` log weights with log q evaluated at `latents` with every parameter held fixed."""
  log_q = model.apply(jax.lax.stop_gradient(variables), images, latents, labels,
                      method=model.posterior_log_prob)
  return log_weights.log_likelihood + log_weights.log_prior - log_q.astype(jnp.float32)


def _estimator(model, variables, images, labels, keys, log_weights, latents,
               options: "StepOptions") -> jax.Array:
  """`[B]` the objective `options.objective` of `jaxvae.losses.estimators` (or 'iwae'), whose
  gradient is the estimator's. `log_weights` (and, for 'elbo_stl', `latents`) come from the pass
  the trainer made; split objectives take it as the generative parameters' pass and make one more
  for the inference parameters, with the same keys (the same draws)."""
  objective, groups = options.objective, options.num_groups
  values = log_weights.values
  if objective == "iwae":
    return losses.iwae_bound(values)
  if objective == "miwae":
    return estimators.miwae(values, groups)
  if objective == "ciwae":
    return estimators.ciwae(values, options.ciwae_beta)
  if objective == "elbo_stl":
    return estimators.stl_elbo(_frozen(model, variables, images, labels, log_weights, latents))
  inference = {**variables, "params": split_parameters(model, variables["params"])[0]}
  if objective == "iwae_dreg":
    q_weights, q_latents = model.apply(inference, images, keys, labels,
                                       method=model.log_weights_and_latents)
    q_weights = jax.tree.map(lambda a: a.astype(jnp.float32), q_weights)
    encoder = estimators.dreg_iwae(_frozen(model, variables, images, labels, q_weights, q_latents))
  else:  # 'piwae': the inference network's objective is MIWAE.
    q_values = model.apply(inference, images, keys, labels, method=model.log_weights).values
    encoder = estimators.miwae(q_values.astype(jnp.float32), groups)
  decoder = losses.iwae_bound(values)  # The generative parameters' gradient: IWAE's.
  return decoder + encoder - jax.lax.stop_gradient(encoder)


def loss_and_metrics(params: Any, model_state: dict, images: jax.Array, labels: jax.Array | None,
                     keys: jax.Array, *, model: nn.Module, options: StepOptions,
                     beta: jax.Array | float) -> tuple[jax.Array, tuple[dict, dict]]:
  """The training loss `[]` of one batch for `keys [K, B]` (see `train_step`), and `(metrics, new
  model state)`; its gradient w.r.t. `params` is the objective's estimator."""
  compute_dtype = jnp.dtype(options.compute_dtype)
  if compute_dtype != jnp.float32:  # Low-precision compute, float32 master params and loss.
    params, images = jax.tree.map(lambda a: a.astype(compute_dtype), (params, images))
  variables = {"params": params, **model_state}
  objective = options.objective
  if objective in SPLIT_OBJECTIVES:  # The generative parameters' pass: q's held fixed.
    variables = {**variables, "params": split_parameters(model, params)[1]}
  forward = model.log_weights_and_latents if objective == "elbo_stl" else model.log_weights
  out, written = model.apply(variables, images, keys, labels, method=forward,
                             mutable=[*model_state, METRICS, LOSSES])
  log_weights, latents = out if objective == "elbo_stl" else (out, None)
  interface.check_log_weights(model, log_weights, keys)
  log_weights = jax.tree.map(lambda a: a.astype(jnp.float32), log_weights)
  if objective == "elbo":
    loss = -jnp.mean(losses.elbo_kl_form(log_weights.log_likelihood,
                                         jnp.mean(log_weights.kl, axis=0), beta))
  elif objective == "exact_elbo":  # By enumeration over a discrete z (the 1-D toy).
    loss = -jnp.mean(model.apply(variables, images, labels, method=model.exact_elbo))
  else:
    loss = -jnp.mean(_estimator(model, {"params": params, **model_state}, images, labels, keys,
                                log_weights, latents, options))
  metrics = {"elbo": jnp.mean(losses.elbo(log_weights.values)), "kl": jnp.mean(log_weights.kl),
             "log_likelihood": jnp.mean(log_weights.log_likelihood)}
  for name, terms in written.get(LOSSES, {}).items():  # Training-only terms, e.g. commitment.
    metrics[name] = jnp.mean(terms.astype(jnp.float32))
    loss += metrics[name]
  metrics["loss"] = loss
  for path, value in traverse_util.flatten_dict(dict(written.get(METRICS, {}))).items():
    metrics["_".join(path)] = value.astype(jnp.float32)
  return loss, (metrics, {name: written[name] for name in model_state})


def train_step(state: TrainState, batch: dict, *, model: nn.Module,
               optimizer: optax.GradientTransformation, schedule: optax.Schedule,
               options: StepOptions) -> tuple[TrainState, dict]:
  """One step on `batch = {'image': [B, ...], 'label': [B] (optional)}` (see the module docstring).

  `options.objective` is 'elbo' (`E_q[log p(x|z)] - beta_t KL` over K samples, with
  `beta_t = kl_warmup_beta(step, kl_warmup_steps, beta)`: the ELBO at beta 1 and no warm-up, a
  beta-VAE otherwise), 'iwae' (the K-sample IWAE bound), 'exact_elbo' (the model's
  `exact_elbo`, by enumeration over a discrete z: capability `EXACT_ELBO`), or one of
  `jaxvae.losses.estimators`: 'elbo_stl', 'iwae_dreg', 'miwae', 'ciwae', 'piwae' (M =
  `num_groups` groups of K samples for the last two). Random draws use
  `fold_in(state.key, step)` split into `[K, B]` per-example keys, independent of the device count
  and of the accumulation. Returns the new state and scalar metrics.
  """
  images = batch["image"]
  keys = jax.random.split(jax.random.fold_in(jax.random.wrap_key_data(state.key), state.step),
                          (options.num_groups * options.num_samples, images.shape[0]))
  beta = losses.kl_warmup_beta(state.step, options.kl_warmup_steps, options.beta)

  grad_fn = jax.grad(functools.partial(loss_and_metrics, model=model, options=options,
                                       beta=beta), has_aux=True)
  labels = batch.get("label")
  if options.accumulate_steps == 1:
    grads, (metrics, model_state) = grad_fn(state.params, state.model_state, images, labels, keys)
  else:
    micro = (_microbatches(images, options.accumulate_steps, 0),
             _microbatches(labels, options.accumulate_steps, 0),
             _microbatches(keys, options.accumulate_steps, 1))

    def accumulate(carry, inputs):  # The model state passes from micro-batch to micro-batch.
      total, model_state = carry
      grads, (metrics, model_state) = grad_fn(state.params, model_state, *inputs)
      return (jax.tree.map(jnp.add, total, grads), model_state), metrics

    zeros = jax.tree.map(jnp.zeros_like, state.params)
    (grads, model_state), metrics = jax.lax.scan(accumulate, (zeros, state.model_state), micro)
    grads = jax.tree.map(lambda g: g / options.accumulate_steps, grads)
    metrics = jax.tree.map(jnp.mean, metrics)

  grad_norm = optax.tree.norm(grads)
  ok = jnp.isfinite(metrics["loss"]) & jnp.isfinite(grad_norm)
  if options.skip_grad_norm:
    ok &= grad_norm <= options.skip_grad_norm
  guard = state.guard
  if options.skip_grad_norm_sigmas:
    threshold = grad_norm_threshold(guard, options.skip_grad_norm_sigmas,
                                    options.grad_norm_stats_decay)
    ok &= grad_norm <= threshold
    guard = update_grad_norm_stats(guard, grad_norm, threshold, options.grad_norm_stats_decay)
    metrics.update(grad_norm_mean=guard.grad_norm_mean,
                   grad_norm_std=jnp.sqrt(guard.grad_norm_var))

  def apply(grads, params, opt_state, ema_params, _):
    updates, opt_state = optimizer.update(grads, opt_state, params)
    updates = jax.tree.map(lambda u: u * state.guard.learning_rate_scale, updates)
    params = optax.apply_updates(params, updates)
    if ema_params is not None:
      ema_params = optax.incremental_update(params, ema_params, 1.0 - options.ema_decay)
    return params, opt_state, ema_params, model_state

  # A skipped update leaves params, optimizer state, EMA and model state as they were (a branch,
  # not a select, so an applied update costs no extra pass over the state).
  params, opt_state, ema_params, model_state = jax.lax.cond(
      ok, apply, lambda grads, *state: state, grads, state.params, state.opt_state,
      state.ema_params, state.model_state)
  skipped = (~ok).astype(jnp.int32)
  consecutive_skips = (state.consecutive_skips + 1) * skipped
  guard = guard.replace(longest_skip_run=jnp.maximum(guard.longest_skip_run, consecutive_skips))
  new_state = state.replace(
      step=state.step + 1, params=params, opt_state=opt_state, ema_params=ema_params,
      model_state=model_state, skipped_updates=state.skipped_updates + skipped,
      consecutive_skips=consecutive_skips, guard=guard)
  metrics.update(learning_rate=schedule(state.step) * guard.learning_rate_scale,
                 grad_norm=grad_norm, skipped=skipped, skipped_updates=new_state.skipped_updates,
                 consecutive_skips=consecutive_skips, longest_skip_run=guard.longest_skip_run)
  return new_state, metrics


def train_steps(state: TrainState, batches: dict, **step_args) -> tuple[TrainState, dict]:
  """`train_step` on each batch of a chunk, in one device call.

  `batches` leaves are `[S, B, ...]`; one compilation per chunk length S, and a chunk of one step
  runs without a loop. Metrics are `[S]`, plus the `[]` norm of the parameters after the chunk,
  `param_norm` (once per call: a pass over the parameters per step would cost ~3% of a small
  MLP's step).
  """
  step = functools.partial(train_step, **step_args)
  if jax.tree.leaves(batches)[0].shape[0] == 1:
    state, metrics = step(state, jax.tree.map(lambda a: a[0], batches))
    metrics = jax.tree.map(lambda m: jnp.asarray(m)[None], metrics)
  else:
    state, metrics = jax.lax.scan(step, state, batches)
  return state, {**metrics, "param_norm": optax.tree.norm(state.params)}


def make_train_step(model, optimizer, schedule, train: ml_collections.ConfigDict,
                    chunked: bool = False):
  """`(state, batch) -> (state, metrics)` with everything else bound; `chunked`: the form
  `train_steps(state, batches [S, B, ...])`."""
  return functools.partial(train_steps if chunked else train_step, model=model,
                           optimizer=optimizer, schedule=schedule,
                           options=StepOptions.from_config(train))
