"""The one trainer: `train_and_evaluate(config, workdir)`."""

import json
import os
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxvae import config as config_lib
from jaxvae import data as data_lib
from jaxvae.errors import UserError
from jaxvae.models import build_model
from jaxvae.train import checkpoint as checkpoint_lib
from jaxvae.train import mesh as mesh_lib
from jaxvae.train import state as state_lib
from jaxvae.train.images import save_image_grid
from jaxvae.train.metrics import MetricWriter

# Keys that may change when a run is resumed; any other change means a different experiment.
_RESUMABLE_CHANGES = ("train.num_steps", "train.log_every", "train.checkpoint_every",
                      "train.keep_checkpoints", "train.num_devices", "data.num_threads",
                      "data.data_dir", "eval.")


def _differences(old: dict, new: dict, prefix: str = ""):
  for key in sorted(old.keys() | new.keys()):
    a, b = old.get(key), new.get(key)
    if isinstance(a, dict) and isinstance(b, dict):
      yield from _differences(a, b, f"{prefix}{key}.")
    elif a != b:
      yield f"{prefix}{key}", a, b


def prepare_workdir(config: ml_collections.ConfigDict, workdir: str) -> None:
  """Creates `workdir` or checks that its checkpoints come from a compatible config; saves config.json."""
  if os.path.exists(workdir) and not os.path.isdir(workdir):
    raise UserError(f"--workdir={workdir} is a file; give a directory (it is created if missing)")
  config_path = os.path.join(workdir, "config.json")
  has_checkpoints = os.path.isdir(os.path.join(workdir, "checkpoints")) and any(
      name.isdigit() for name in os.listdir(os.path.join(workdir, "checkpoints")))
  if has_checkpoints and os.path.exists(config_path):
    with open(config_path) as f:
      old = json.load(f)
    new = json.loads(config.to_json())
    for key, was, now in _differences(old, new):
      if not key.startswith(_RESUMABLE_CHANGES):
        raise UserError(f"{workdir} holds checkpoints of a different run: {key} was {was!r}, now "
                        f"{now!r}; use a new --workdir, or resume with the run's own config "
                        f"({config_path})")
  try:
    os.makedirs(workdir, exist_ok=True)
    if jax.process_index() == 0:
      config_lib.save_config(config, config_path)
  except OSError as e:
    raise UserError(f"cannot write to --workdir={workdir} ({e.strerror}); choose a writable "
                    f"directory") from None


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Trains (resuming from the latest checkpoint in `workdir`), then evaluates log p(x).

  Returns the evaluation record of the final step (see `jaxvae.eval.evaluate`).
  """
  from jaxvae.eval import evaluate  # eval depends on train; import here to avoid a cycle.

  config_lib.validate(config)
  mesh = mesh_lib.make_mesh(config.train.num_devices)
  mesh_lib.check_divisible(config.train.batch_size, mesh, "train.batch_size")
  mesh_lib.check_divisible(config.eval.batch_size, mesh, "eval.batch_size")
  data = data_lib.load_split(config.data, config.data.train_split)
  prepare_workdir(config, workdir)

  model = build_model(config.model, data.image_shape)
  optimizer, schedule = state_lib.make_optimizer(config.train)
  replicated, batch_sharding = mesh_lib.replicated(mesh), mesh_lib.batch_sharding(mesh)
  init_key, train_key = jax.random.split(jax.random.key(config.seed))
  init = jax.jit(lambda key: state_lib.init_state(model, optimizer, data.image_shape, key),
                 out_shardings=replicated)
  checkpoints = checkpoint_lib.Checkpoints(workdir, max_to_keep=config.train.keep_checkpoints)
  start_step = checkpoints.latest_step() or 0
  if start_step:
    state = checkpoints.restore(start_step, jax.eval_shape(init, init_key))
    state = state.replace(step=jax.device_put(jnp.asarray(start_step, jnp.int32), replicated))
    print(f"Resuming from step {start_step} in {checkpoints.directory}", flush=True)
  else:
    state = init(init_key)

  step_fn = jax.jit(state_lib.make_train_step(model, optimizer, schedule, config.train),
                    in_shardings=(replicated, batch_sharding, replicated),
                    out_shardings=(replicated, replicated), donate_argnums=0)
  show = _image_writer(model, config, mesh, workdir)
  writer = MetricWriter(os.path.join(workdir, "metrics.jsonl"),
                        os.path.join(workdir, "tensorboard", "train"))
  batches = data_lib.iterate_from(data_lib.train_batches(config, data), start_step,
                                  config.data.num_threads)
  pending, last_log = [], (start_step, time.perf_counter())
  for step in range(start_step + 1, config.train.num_steps + 1):
    batch = mesh_lib.global_batch(next(batches), mesh)
    state, metrics = step_fn(state, batch, train_key)
    pending.append(metrics)
    if step % config.train.log_every == 0 or step == config.train.num_steps:
      means = jax.tree.map(lambda *m: np.mean(m), *jax.device_get(pending))
      now = time.perf_counter()
      means["examples_per_sec"] = (step - last_log[0]) * config.train.batch_size / (now - last_log[1])
      writer.write(step, means)
      print(f"step {step}: loss {means['loss']:.3f}, elbo {means['elbo']:.3f}, kl {means['kl']:.3f}, "
            f"{means['examples_per_sec']:.0f} examples/s", flush=True)
      pending, last_log = [], (step, now)
    if step % config.train.checkpoint_every == 0 or step == config.train.num_steps:
      checkpoints.save(step, state)
      show(state.params, step)
  checkpoints.wait()
  checkpoints.close()
  writer.close()
  final_step = max(start_step, config.train.num_steps)
  if start_step >= config.train.num_steps:
    print(f"Already trained to step {start_step} (train.num_steps={config.train.num_steps}).")
  return evaluate(config, workdir, step=final_step)


def _image_writer(model, config, mesh, workdir: str):
  """`show(params, step)`: writes 64 samples and 32 test images with their reconstructions as PNGs.

  Every process must call it (it runs under jit on the global parameters); process 0 writes.
  """
  eval_split = data_lib.load_split(config.data, config.data.eval_split)
  originals = next(data_lib.eval_batches(config, eval_split, 32 * jax.process_count()))["image"]
  originals = mesh_lib.global_batch({"image": originals}, mesh)["image"]
  replicated = mesh_lib.replicated(mesh)

  def render(params):
    samples = model.apply({"params": params}, jax.random.key(config.seed), 64, method=model.sample)
    pairs = jnp.stack([originals, model.apply({"params": params}, originals,
                                              method=model.reconstruct)], axis=1)
    return samples, pairs.reshape((-1,) + pairs.shape[2:])

  render = jax.jit(render, out_shardings=replicated)
  images_dir = os.path.join(workdir, "images")

  def show(params, step: int) -> None:
    samples, pairs = render(params)
    if jax.process_index() == 0:
      save_image_grid(np.asarray(samples.addressable_data(0)),
                      os.path.join(images_dir, f"samples_{step:08d}.png"))
      save_image_grid(np.asarray(pairs.addressable_data(0)),
                      os.path.join(images_dir, f"reconstructions_{step:08d}.png"), columns=16)

  return show
