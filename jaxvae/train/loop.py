"""The one trainer: `train_and_evaluate(config, workdir)`."""

import functools
import json
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator

import flax.linen as nn
import jax
import ml_collections
import numpy as np
from etils import epath

from jaxvae import config as config_lib
from jaxvae import data as data_lib
from jaxvae.errors import UserError
from jaxvae.eval import evaluate
from jaxvae.models import interface
from jaxvae.runtime import checkpoint as checkpoint_lib
from jaxvae.runtime import images as images_lib
from jaxvae.runtime import lock as lock_lib
from jaxvae.runtime import mesh as mesh_lib
from jaxvae.runtime import workdir as workdir_lib
from jaxvae.runtime.metrics import MetricWriter, drop_records_after
from jaxvae.runtime.progress import Progress
from jaxvae.runtime import trained as trained_lib
from jaxvae.train import state as state_lib

# Keys that may change when a run is resumed; any other change means a different experiment.
_RESUMABLE_CHANGES = ("train.num_steps", "train.log_every", "train.checkpoint_every",
                      "train.keep_checkpoints", "train.keep_every", "train.num_devices",
                      "train.steps_per_call", "train.max_consecutive_skips",
                      "train.max_rollbacks", "train.rollback_lr_factor",
                      "train.progress_bar", "train.fsdp_devices", "train.image_every",
                      "train.image_temperature", "data.num_threads",
                      "data.data_dir", "eval.")


def _differences(old: dict, new: dict, prefix: str = ""):
  for key in sorted(old.keys() | new.keys()):
    a, b = old.get(key), new.get(key)
    if isinstance(a, dict) and isinstance(b, dict):
      yield from _differences(a, b, f"{prefix}{key}.")
    elif a != b:
      yield f"{prefix}{key}", a, b


def prepare_workdir(config: ml_collections.ConfigDict, workdir: str) -> lock_lib.WorkdirLock:
  """Creates `workdir` or checks that its checkpoints come from a compatible config; takes its lock
  (one trainer per workdir, `jaxvae.runtime.lock`), then saves config.json; returns the lock."""
  path = epath.Path(workdir)  # Local or gs://.
  if path.exists() and not path.is_dir():
    raise UserError(f"--workdir={workdir} is a file; give a directory (it is created if missing)")
  config_path = workdir_lib.config_path(workdir)
  checkpoints = epath.Path(workdir_lib.checkpoints_dir(workdir))
  if checkpoints.exists() and not checkpoints.is_dir():
    raise UserError(f"{checkpoints} is a file, where the run keeps its checkpoint directory; move "
                    f"it away or use a new --workdir")
  has_checkpoints = checkpoints.is_dir() and any(p.name.isdigit() for p in checkpoints.iterdir())
  if has_checkpoints and epath.Path(config_path).exists():
    old = config_lib.migrate(json.loads(epath.Path(config_path).read_text()))
    new = json.loads(config.to_json())
    changes = sorted(_differences(old, new), key=lambda change: change[0] != "model.kind")
    for key, was, now in changes:
      if not key.startswith(_RESUMABLE_CHANGES):
        raise UserError(f"{workdir} holds checkpoints of a different run: {key} was {was!r}, now "
                        f"{now!r}; use a new --workdir, or resume the run as it was: jaxvae "
                        f"train --workdir={workdir} --config={config_path}")
  try:
    path.mkdir(parents=True, exist_ok=True)
    lock = lock_lib.acquire(workdir)  # Before config.json: a refused trainer writes nothing.
    if jax.process_index() == 0:
      config_lib.save_config(config, config_path)
  except OSError as e:
    raise UserError(f"cannot write to --workdir={workdir} ({e.strerror}); choose a writable "
                    f"directory") from None
  return lock


def chunk_sizes(start_step: int, train: ml_collections.ConfigDict,
                steps_per_call: int) -> Iterator[int]:
  """Steps per device call from `start_step` on: at most `steps_per_call`, and a chunk never crosses
  a multiple of `log_every` or `checkpoint_every`, nor `num_steps`, so the host acts there. A run
  resumed at any chunk boundary continues with the chunks of the uninterrupted run."""
  step = start_step
  while step < train.num_steps:
    boundary = min(train.num_steps, (step // train.log_every + 1) * train.log_every,
                   (step // train.checkpoint_every + 1) * train.checkpoint_every)
    size = min(steps_per_call, boundary - step)
    yield size
    step += size


def convolves_on_cpu(step: Callable, *args) -> bool:
  """Whether `step(*args)` (arrays or `jax.ShapeDtypeStruct`s) convolves on the CPU backend, where
  XLA runs convolutions inside loops 10-40x slower than outside them (jax#12868)."""
  return (jax.default_backend() == "cpu" and
          "conv_general_dilated" in str(jax.make_jaxpr(step)(*args)))


def jit_steps(steps_fn: Callable, abstract_state: state_lib.TrainState,
              mesh: jax.sharding.Mesh) -> Callable:
  """`steps_fn(state, chunk)` jitted as the trainer runs it: the state sharded by
  `mesh_lib.state_shardings` and donated, chunks `[S, B, ...]` split over the devices, metrics
  replicated."""
  state_sharding = mesh_lib.state_shardings(abstract_state, mesh)
  return jax.jit(steps_fn, in_shardings=(state_sharding, mesh_lib.stacked_batch_sharding(mesh)),
                 out_shardings=(state_sharding, mesh_lib.replicated(mesh)), donate_argnums=0)


def compile_steps(model, optimizer, schedule, train: ml_collections.ConfigDict,
                  abstract_state: state_lib.TrainState, local_batch: dict,
                  mesh: jax.sharding.Mesh, start_step: int) -> tuple[Callable, int, float]:
  """`(run(state, chunk), steps per call, seconds of compilation)`: `run` is the jitted, donated
  `state.train_steps`, compiled here ahead of time for chunks of the first chunk's length, the
  usual one (so that the first interval's throughput counts no compilation), and on first use
  for other lengths.
  On the CPU, a step that convolves runs one step per call, which needs no loop
  (`convolves_on_cpu`).
  """
  steps_fn = state_lib.make_train_step(model, optimizer, schedule, train, chunked=True)
  one_per_call = convolves_on_cpu(
      steps_fn, abstract_state,
      jax.tree.map(lambda a: jax.ShapeDtypeStruct((1,) + a.shape, a.dtype), local_batch))
  if one_per_call and train.steps_per_call > 1:
    print("One step per device call: XLA:CPU runs convolutions inside loops 10-40x slower "
          "(jax#12868)", flush=True)
  per_call = 1 if one_per_call else train.steps_per_call
  jitted = jit_steps(steps_fn, abstract_state, mesh)
  start = time.perf_counter()
  usual = next(chunk_sizes(start_step, train, per_call), per_call)
  chunk = jax.tree.map(lambda a: jax.ShapeDtypeStruct(
      (usual, a.shape[0] * jax.process_count()) + a.shape[1:], a.dtype), local_batch)
  compiled = jitted.lower(abstract_state, chunk).compile()
  seconds = time.perf_counter() - start

  def run(state, chunk):
    return (compiled if jax.tree.leaves(chunk)[0].shape[0] == usual else jitted)(state, chunk)

  return run, per_call, seconds


def _chunks(batches: Iterator[dict], sizes: Iterator[int]) -> Iterator[dict]:
  """Stacks the next `n` local batches for each `n` of `sizes`: leaves `[n, b, ...]`."""
  for size in sizes:
    group = [next(batches) for _ in range(size)]
    yield jax.tree.map(lambda *leaves: np.stack(leaves), *group)


# Metrics whose latest value is reported at a log interval (the rest: the mean over applied steps).
_LATEST = ("skipped_updates", "consecutive_skips", "longest_skip_run", "param_norm",
           "grad_norm_mean", "grad_norm_std")


def summarize(metrics: list[dict]) -> dict:
  """The host-side summary of a log interval's metrics: per call, a dict of `[n]` arrays (one
  value per step of the call) and `[]` ones (one per call, e.g. `param_norm`).

  Loss terms and norms are averaged over the steps whose update was applied (a skipped step's
  loss may be NaN); `skipped` is summed (`skipped_in_interval`) and divided by the interval's
  steps (`skip_rate`); counters and running statistics take their latest value.
  """
  values = {key: np.concatenate([np.atleast_1d(m[key]) for m in metrics]) for key in metrics[0]}
  applied = values["skipped"] == 0
  summary = {}
  for key, v in values.items():
    if key in _LATEST:
      summary[key] = v[-1].item()
    elif key == "skipped":
      summary["skipped_in_interval"] = int(v.sum())
      summary["skip_rate"] = float(v.mean())
    else:
      summary[key] = float(np.mean(v[applied])) if applied.any() else float("nan")
  return summary


class _Preemption:
  """Whether the job was asked to stop (SIGTERM, or Ctrl-C: SIGINT): `reached(i)` at the i-th chunk
  boundary; `interrupted` tells a Ctrl-C.

  One process: a handler sets a flag; after a first Ctrl-C, a second one stops the process at once.
  Several: JAX's preemption sync manager (started by `jax.distributed.initialize`) agrees on a
  boundary that every process reaches (SIGTERM only).
  """

  def __enter__(self):
    self.requested, self.interrupted, self._previous = False, False, {}
    if jax.process_count() == 1 and threading.current_thread() is threading.main_thread():
      self._previous = {s: signal.signal(s, self._handle) for s in (signal.SIGTERM, signal.SIGINT)}
    return self

  def _handle(self, signum, frame):
    del frame
    self.requested = True
    if signum == signal.SIGINT:
      self.interrupted = True
      signal.signal(signal.SIGINT, signal.SIG_DFL)  # A second Ctrl-C ends the process at once.
      try:  # Not print(): the handler may run in the middle of a print of the loop.
        os.write(2, b"Ctrl-C: saving at the end of the current steps; Ctrl-C again stops at once\n")
      except OSError:
        pass

  def reached(self, index: int) -> bool:
    if jax.process_count() == 1:
      return self.requested
    from jax.experimental import multihost_utils

    return multihost_utils.reached_preemption_sync_point(index)

  def __exit__(self, *exc):
    for signum, previous in self._previous.items():
      signal.signal(signum, previous)


def _too_many_skips(state, train: ml_collections.ConfigDict) -> bool:
  """Whether more than `train.max_consecutive_skips` updates in a row were skipped: a state never
  saved (a replicated scalar, so every process decides the same)."""
  return int(state.consecutive_skips) > train.max_consecutive_skips


def _check_skips(state, train: ml_collections.ConfigDict, checkpoints, step: int) -> None:
  """Stops the run (a `UserError`, nothing saved) when it has too many skips in a row and no
  rollback left (`train.max_rollbacks`); returns when one is left."""
  rollbacks = int(state.guard.rollbacks)
  if rollbacks < train.max_rollbacks:
    return
  checkpoints.wait()
  last = checkpoints.latest_step()
  spent = (f", even after train.max_rollbacks={rollbacks} rollbacks with the learning rate "
           f"scaled to {float(state.guard.learning_rate_scale):g}" if rollbacks else "")
  raise UserError(
      f"the last {int(state.consecutive_skips)} updates (to step {step}) were all skipped for "
      f"non-finite or exploding gradients, more than train.max_consecutive_skips="
      f"{train.max_consecutive_skips}{spent}; the last good checkpoint "
      f"({'step ' + str(last) if last is not None else 'none'}) is intact. Check the data for "
      f"NaN/inf, lower train.learning_rate or set train.clip_grad_norm, then rerun to resume")


def _roll_back(guard, skips: int, step: int, train: ml_collections.ConfigDict,
               last_good_state: Callable, back_off: Callable, writer: MetricWriter,
               metrics_path: str, progress: Progress):
  """The state to continue from after `skips` skipped updates in a row to `step`, with `guard` the
  state's: `last_good_state()` (the last checkpoint's, or the initial state when none was saved)
  with the learning rate backed off (`back_off`: `state_lib.rolled_back`). Reported in one line
  and one metrics record at the step it goes back to, `{'rollback': n, 'rolled_back_from_step',
  'learning_rate_scale', 'consecutive_skips'}`; the records of the discarded steps are removed
  (they come again)."""
  state = back_off(last_good_state(), guard)
  back, rollback = int(state.step), int(state.guard.rollbacks)
  origin = f"the checkpoint of step {back}" if back else "the initial state"
  scale = float(state.guard.learning_rate_scale)
  if jax.process_index() == 0:
    drop_records_after(metrics_path, back, rollbacks=rollback - 1)
  writer.write(back, {"rollback": rollback, "rolled_back_from_step": step,
                      "learning_rate_scale": scale, "consecutive_skips": skips})
  progress.line(f"Rollback {rollback}/{train.max_rollbacks} at step {step}: the last {skips} "
                f"updates were skipped (train.max_consecutive_skips="
                f"{train.max_consecutive_skips}); back to {origin} with the learning rate "
                f"scaled by {scale:g}")
  return state


_NEEDS = {  # What a model must declare to train with an objective, and why.
    "exact_elbo": [(interface.EXACT_ELBO, "it computes the ELBO by enumeration")],
    "elbo_stl": [(interface.REPARAMETERIZED, "it evaluates log q at the draws with q frozen")],
    "iwae_dreg": [(interface.REPARAMETERIZED, "it evaluates log q at the draws with q frozen"),
                  (interface.SEPARATE_INFERENCE, "it gives q's parameters their own gradient")],
    "piwae": [(interface.SEPARATE_INFERENCE, "it gives q's parameters their own gradient")],
}


def check_objective(model, train: ml_collections.ConfigDict) -> None:
  """Raises `UserError` when the model cannot train with `train.objective`."""
  for capability, why in _NEEDS.get(train.objective, ()):
    if not interface.has(model, capability):
      raise UserError(f"train.objective={train.objective!r} needs capability {capability.name} "
                      f"({why}); this {type(model).__name__} does not have it (see the objectives "
                      f"in the README for the models each one supports): choose another objective")


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str,
                       model: nn.Module | None = None) -> dict | None:
  """Trains (resuming from the latest checkpoint in `workdir`), then evaluates log p(x).

  `model`: any module with the model interface (`jaxvae.models.interface`); default the one
  `config.model` names. Returns the evaluation record of the final step (see
  `jaxvae.eval.evaluate`), or None when the run was preempted (SIGTERM) or interrupted (Ctrl-C):
  then it saved a checkpoint of the current step and stopped cleanly; the same call resumes it.
  """
  config_lib.validate(config)
  train = config.train
  mesh = mesh_lib.make_mesh(train.num_devices, train.fsdp_devices)
  mesh_lib.check_divisible(train.batch_size, mesh, "train.batch_size")
  data = data_lib.load_split(config.data, config.data.train_split, config.model)
  eval_data = data_lib.load_split(config.data, config.data.eval_split,
                                  config.model)  # Errors before any write.
  given = model
  if given is not None:
    interface.check_model(given)
  model = given or trained_lib.build_model(config.model, data.image_shape)
  check_objective(model, train)
  trained_lib.check_labels(model, data, config.data.train_split)
  images_lib.check_temperature(model, train.image_temperature)
  lock = prepare_workdir(config, workdir)  # After every check: a refused run writes nothing.
  optimizer, schedule = state_lib.make_optimizer(train)
  init_state = lambda key, model=model: state_lib.init_state(model, optimizer, data.image_shape,
                                                             key, ema=train.ema_decay > 0)
  key = jax.random.key(config.seed)
  abstract_state = jax.eval_shape(init_state, key)
  state_sharding = mesh_lib.state_shardings(abstract_state, mesh)
  init = lambda model: jax.jit(lambda key: init_state(key, model),  # Built where it lives.
                               out_shardings=state_sharding)

  def initial_state():  # Only here do data-dependent initializations matter.
    fresh = given or trained_lib.build_model(
        config.model, data.image_shape, pixel_mean=lambda: data_lib.mean_image(config.data, data))
    return init(fresh)(key)

  checkpoints = checkpoint_lib.Checkpoints(workdir, max_to_keep=train.keep_checkpoints,
                                           keep_every=train.keep_every)
  abstract_target = jax.eval_shape(init(model), key)
  fresh_guard = jax.jit(state_lib.Guard.fresh, out_shardings=state_sharding.guard)
  # What a checkpoint restores into (a checkpoint saved before the guard existed gets a fresh one).
  restore_target = lambda: abstract_target.replace(guard=fresh_guard())

  def last_good_state():  # What a rollback goes back to.
    checkpoints.wait()
    restored = checkpoints.restore_latest(restore_target())
    return initial_state() if restored is None else restored

  state = checkpoints.restore_latest(restore_target())  # Damaged steps set aside.
  start_step = checkpoints.latest_step() or 0
  metrics_path = workdir_lib.train_metrics_path(workdir)
  if state is None:
    state = initial_state()
  else:
    print(f"Resuming from step {start_step} in {checkpoints.directory}", flush=True)
    if jax.process_index() == 0:  # One record per step: those past the checkpoint come again.
      drop_records_after(metrics_path, start_step, rollbacks=int(state.guard.rollbacks))
  back_off = jax.jit(functools.partial(state_lib.rolled_back, lr_factor=train.rollback_lr_factor),
                     out_shardings=state_sharding)

  batches = data_lib.train_batches(config, data)
  steps_fn, steps_per_call, compile_seconds = compile_steps(
      model, optimizer, schedule, train, abstract_state, batches[0], mesh, start_step)
  _banner(config, workdir, model, state, data, eval_data, mesh, compile_seconds)
  show = _image_writer(model, config, mesh, workdir, eval_data)
  image_every = train.image_every or train.checkpoint_every
  writer = MetricWriter(metrics_path, workdir_lib.tensorboard_dir(workdir, "train"))
  progress = Progress(start_step, train.num_steps, enabled=train.progress_bar)
  step, calls = start_step, 0
  host = {"save_seconds": 0.0, "image_seconds": 0.0}  # The host's own work in this interval.
  try:
    with _Preemption() as preemption:
      while step < train.num_steps:  # Once, and once more from where each rollback went back to.
        local = data_lib.iterate_from(batches, step, config.data.num_threads)
        chunks = data_lib.prefetch_to_device(
            _chunks(local, chunk_sizes(step, train, steps_per_call)),
            mesh_lib.stacked_batch_sharding(mesh))
        pending, last_log = [], (step, time.perf_counter())
        for size, chunk in zip(chunk_sizes(step, train, steps_per_call), chunks):
          state, metrics = steps_fn(state, chunk)
          step += size
          calls += 1
          pending.append(metrics)
          logged = step % train.log_every == 0 or step == train.num_steps
          saved = step % train.checkpoint_every == 0 or step == train.num_steps
          if logged:
            summary = summarize(jax.device_get(pending))
            now = time.perf_counter()
            device_seconds = now - last_log[1] - sum(host.values())
            summary["step_time"] = device_seconds / (step - last_log[0])
            summary["examples_per_sec"] = train.batch_size / summary["step_time"]
            summary.update(host)
            writer.write(step, summary)
            progress.line(log_line(step, train.num_steps, summary, progress.eta(step)))
            pending, last_log = [], (step, now)
            host = dict.fromkeys(host, 0.0)
          if (logged or saved) and _too_many_skips(state, train):
            _check_skips(state, train, checkpoints, step)  # Stops the run if none is left.
            guard, skips = state.guard, int(state.consecutive_skips)
            del state  # Freed before the restore: never two whole states in memory.
            state = _roll_back(guard, skips, step, train, last_good_state, back_off, writer,
                               metrics_path, progress)
            step = int(state.step)
            break  # The data stream starts again at that step.
          if saved:
            started = time.perf_counter()
            checkpoints.save(step, state)
            host["save_seconds"] += time.perf_counter() - started
          if step % image_every == 0 or step == train.num_steps:
            started = time.perf_counter()
            params = state.ema_params if state.ema_params is not None else state.params
            show({"params": params, **state.model_state}, step)
            host["image_seconds"] += time.perf_counter() - started
          progress.update(step)
          if step < train.num_steps and preemption.reached(calls - 1):
            if not saved and not _too_many_skips(state, train):  # The restart replays them.
              checkpoints.save(step, state)
            checkpoints.wait()
            progress.close()
            if preemption.interrupted:
              print(f"Interrupted (Ctrl-C) at step {step}, saved in {checkpoints.directory}; "
                    f"rerun the same command to resume.", flush=True)
            else:
              print(f"Preempted (SIGTERM) at step {step}: saved a checkpoint in "
                    f"{checkpoints.directory}; rerun the same command to resume.", flush=True)
            return None
  finally:
    progress.close()
    checkpoints.wait()
    checkpoints.close()
    writer.close()
    lock.release()
  final_step = max(start_step, train.num_steps)
  if start_step >= train.num_steps:
    print(f"Already trained to step {start_step} (train.num_steps={train.num_steps}).")
  if not config.eval.after_training:
    return None
  return evaluate(config, workdir, step=final_step, model=given)


def log_line(step: int, num_steps: int, summary: dict, eta: str) -> str:
  """The line printed at a log interval."""
  return (f"step {step}/{num_steps}: loss {summary['loss']:.3f}, elbo {summary['elbo']:.3f}, "
          f"kl {summary['kl']:.3f}, lr {summary['learning_rate']:.2e}, "
          f"skipped {summary['skipped_updates']}, {summary['examples_per_sec']:.0f} examples/s"
          + (f", ETA {eta}" if eta else ""))


def _banner(config, workdir: str, model, state, data, eval_data, mesh, compile_seconds) -> None:
  """What the run is and where its outputs go, in a few lines (process 0)."""
  if jax.process_index() != 0:
    return
  count = sum(a.size for a in jax.tree.leaves(state.params))
  axes = ", ".join(f"{name} {size}" for name, size in mesh.shape.items())
  print(f"jaxvae train: {type(model).__name__} (model.kind={config.model.kind!r}), {count:,} "
        f"parameters; data {config.data.source}:{config.data.name or config.data.path}, "
        f"{len(data.source):,} train examples ({config.data.train_split}) and "
        f"{len(eval_data.source):,} eval examples ({config.data.eval_split}) of shape "
        f"{tuple(data.image_shape)}; {mesh.size} device(s) ({jax.default_backend()}; mesh {axes}) "
        f"in {jax.process_count()} process(es); compiled in {compile_seconds:.1f} s\n"
        f"  outputs in {workdir}: config.json, checkpoints/, metrics.jsonl, images/, eval/, "
        f"tensorboard/", flush=True)


def _image_writer(model, config, mesh, workdir: str, eval_split: data_lib.Split):
  """`show(variables, step)`: the image grids of `jaxvae.runtime.images.make_image_writer` on the first
  32 test images; data that are not `[H, W, C]` images (the 1-D toy) get none."""
  if len(eval_split.image_shape) != 3:
    if jax.process_index() == 0:
      hint = ("; data.image_shape=(H, W, C) reads them as images" if config.data.source == "npz"
              else "")
      print(f"No image grids: the data are vectors of shape {tuple(eval_split.image_shape)}{hint}",
            flush=True)
    return lambda variables, step: None
  originals = next(data_lib.eval_batches(config, eval_split, 32 * jax.process_count()))
  originals = mesh_lib.global_batch({k: originals[k] for k in ("image", "label")}, mesh)
  return images_lib.make_image_writer(model, config, mesh, workdir, originals)
